from __future__ import annotations

import csv
import io
import re

import pytest


def table_names(client, query: str) -> list[str]:
    body = client.get(f"/?{query}&per_page=200").content.decode()
    return re.findall(r'<span class="service-name">([^<]*)</span>', body)


def csv_rows(client, query: str) -> list[dict[str, str]]:
    response = client.get(f"/services.csv?{query}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="modelarts-services-')
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize(
    "query", ["", "sort=-calls", "status=running&sort=name", "q=a&sort=-published", "owner=o2"]
)
def test_it_exports_the_same_rows_in_the_same_order_as_the_table(client, polled, query):
    assert [row["service_name"] for row in csv_rows(client, query)] == table_names(client, query)


def test_it_exports_every_row_not_just_one_page(client, make_service):
    for n in range(60):
        make_service(f"svc-{n:02d}")
    assert len(csv_rows(client, "per_page=25&page=2")) == 60


def test_it_writes_a_header_and_iso_times(client, make_service):
    make_service("alpha", invocation_times=10, failed_times=1)
    [row] = csv_rows(client, "")
    assert list(row)[:3] == ["source", "service_id", "service_name"]
    assert row["publish_at"] == "2026-01-01T01:00:00Z"
    assert row["failure_rate"] == "0.1"
    assert row["progress"] == ""


@pytest.mark.parametrize("payload", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx"])
def test_it_neutralises_spreadsheet_formulas(client, make_service, payload):
    make_service(payload, description=payload, owner=payload[:60])
    [row] = csv_rows(client, "")
    assert row["service_name"] == "'" + payload
    assert row["description"] == "'" + payload


def test_it_keeps_negative_numbers_as_numbers(client, make_service):
    make_service("reset", calls_delta=-5)
    assert csv_rows(client, "")[0]["calls_since_previous_poll"] == "-5"


def test_it_refuses_bad_parameters(client, db):
    response = client.get("/services.csv?sort=nope")
    assert response.status_code == 400
    assert "sort" in response.content.decode()


def test_it_streams_without_a_query_per_row(client, make_service, django_assert_max_num_queries):
    for n in range(120):
        make_service(f"svc-{n}")
    with django_assert_max_num_queries(6):
        response = client.get("/services.csv")
        assert len(b"".join(response.streaming_content).splitlines()) == 121


def test_the_page_links_exports_of_the_current_view(client, polled):
    body = client.get("/?status=running&sort=-calls&page=2&per_page=25").content.decode()
    assert 'href="/services.csv?status=running&amp;sort=-calls"' in body
    assert 'href="/api/services?status=running&amp;sort=-calls&amp;page=' in body
