from __future__ import annotations

import json

import pytest


def exported(client, query: str) -> list[dict]:
    response = client.get(f"/services.json?{query}")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith('attachment; filename="modelarts-services-')
    assert response["Content-Disposition"].endswith('.json"')
    return json.loads(b"".join(response.streaming_content))


def api_rows(client, query: str) -> list[dict]:
    data = client.get(f"/api/services?{query}&per_page=200").json()
    assert data["count"] <= 200  # one page holds them all
    return data["services"]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "sort=-calls",
        "status=running&sort=name",
        "q=a&sort=-published",
        "window=1h",
        "since=2026-01-01T00:00:00Z&detect=idle",
    ],
)
def test_it_exports_the_services_api_services_lists_in_its_order(client, polled, query):
    assert exported(client, query) == api_rows(client, query)


def test_it_exports_every_row_not_just_one_page(client, make_service):
    for n in range(60):
        make_service(f"svc-{n:02d}")
    assert len(exported(client, "per_page=25&page=2")) == 60


def test_it_exports_an_empty_view_as_an_empty_array(client, db):
    assert exported(client, "status=failed") == []


def test_it_keeps_hostile_strings_as_data(client, make_service):
    name = '"]}</script>\n\\u0000'
    make_service(name, description="\u2028\u2029 😀")
    [row] = exported(client, "")
    assert (row["service_name"], row["description"]) == (name, "\u2028\u2029 😀")


def test_it_refuses_bad_parameters(client, db):
    response = client.get("/services.json?sort=nope")
    assert response.status_code == 400
    assert "sort" in response.json()["errors"]


def test_it_needs_a_login_as_the_csv_does(anonymous_client, db):
    for url in ("/services.json", "/services.csv"):
        assert anonymous_client.get(url).status_code == 302


def test_it_streams_without_a_query_per_row(client, make_service, django_assert_max_num_queries):
    for n in range(120):
        make_service(f"svc-{n}")
    with django_assert_max_num_queries(6):
        response = client.get("/services.json")
        assert len(json.loads(b"".join(response.streaming_content))) == 120


def test_the_page_links_the_full_json_export_of_the_current_view(client, polled):
    body = client.get("/?status=running&sort=-calls&page=2&per_page=25").content.decode()
    assert 'href="/services.json?status=running&amp;sort=-calls"' in body
