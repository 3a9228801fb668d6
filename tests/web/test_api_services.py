from __future__ import annotations

import re

import pytest


@pytest.fixture
def rows(make_service):
    return [
        make_service("alpha", "running", invocation_times=1000, failed_times=10),
        make_service("bravo", "failed", invocation_times=50, failed_times=40),
        make_service("charlie", "concerning", invocation_times=5000, failed_times=500),
    ]


@pytest.mark.parametrize("query", ["", "?sort=-calls", "?status=failed&status=running", "?q=ar"])
def test_it_returns_the_same_rows_as_the_table(client, rows, query):
    table = re.findall(
        r'<span class="service-name">([^<]*)</span>', client.get(f"/{query}").content.decode()
    )
    data = client.get(f"/api/services{query}").json()
    assert [s["service_name"] for s in data["services"]] == table
    assert data["count"] == len(table)


def test_it_describes_each_service(client, rows):
    data = client.get("/api/services?status=failed").json()
    assert data["services"] == [
        {
            "source": "fixture",
            "service_id": rows[1].service_id,
            "service_name": "bravo",
            "description": "",
            "status": "failed",
            "progress": None,
            "infer_type": "real-time",
            "owner": "owner-a",
            "owner_name": None,
            "workspace_id": "",
            "invocation_times": 50,
            "failed_times": 40,
            "failure_rate": 0.8,
            "calls_since_previous_poll": None,
            "detail": {
                "running_instances": None,
                "desired_instances": None,
                "reason": None,
                "fetched_at": None,
            },
            "publish_at": "2026-01-01T02:00:00Z",
            "transition_at": None,
            "status_changed_at": None,
            "first_seen_at": "2026-01-02T00:00:00Z",
            "detectors": {"stuck": False, "idle": False, "flapping": False},
        }
    ]
    assert data["sources"][0]["name"] == "fixture"
    assert data["sources"][0]["stale"] is True


def test_it_pages(client, rows):
    data = client.get("/api/services?per_page=25&page=1&sort=name").json()
    assert (data["page"], data["pages"], data["per_page"], data["sort"]) == (1, 1, 25, "name")


def test_it_answers_bad_parameters_with_400_and_the_reasons(client, rows):
    response = client.get("/api/services?sort=nope&per_page=3")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"sort", "per_page"}
