"""Several sources with services of the same names and ids: rows and pages stay apart."""

from __future__ import annotations

import re

from dashboard.models import Source


def other_source() -> Source:
    return Source.objects.create(name="sg", endpoint="http://127.0.0.1:9", project_id="p2")


def test_one_source_shows_no_source_column(client, make_service):
    make_service("ocr", "running")
    body = client.get("/").content.decode()
    assert '<th scope="col" data-col="source">Source</th>' not in body
    assert 'class="source"' not in body


def test_two_sources_with_the_same_names_give_two_rows_and_two_pages(client, make_service):
    first = make_service("ocr", "failed")
    second = make_service("ocr", "running", source=other_source())
    second.service_id = first.service_id  # the same id in two projects, as happens
    second.save()
    body = client.get("/?sort=name").content.decode()
    assert '<th scope="col" data-col="source">Source</th>' in body
    assert re.findall(r'<td class="source">([^<]*)</td>', body) == ["fixture", "sg"]
    links = re.findall(r'class="service-link" href="([^"]+)"', body)
    assert links == [
        f"/services/{first.service_id}/?source=fixture",
        f"/services/{first.service_id}/?source=sg",
    ]
    fixture_page = client.get(links[0]).content.decode()
    sg_page = client.get(links[1]).content.decode()
    assert 'class="badge badge-bad">failed<' in fixture_page
    assert 'class="badge badge-ok">running<' in sg_page


def test_each_tile_says_how_many_of_its_services_each_source_has(client, make_service):
    sg = other_source()
    make_service("a", "failed")
    make_service("b", "failed", source=sg)
    make_service("c", "failed", source=sg)
    body = client.get("/").content.decode()
    assert 'title="fixture: 1 · sg: 2"' in body


def test_the_csv_and_json_name_each_rows_source(client, make_service):
    make_service("a", "failed")
    make_service("a", "failed", source=other_source())
    data = client.get("/api/services?sort=name").json()
    assert [s["source"] for s in data["services"]] == ["fixture", "sg"]
    response = client.get("/services.csv?sort=name")
    csv = b"".join(response.streaming_content).decode().splitlines()
    assert [line.split(",")[0] for line in csv[1:]] == ["fixture", "sg"]
