from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.ingest import poll as polling
from dashboard.models import PollRun, Source, StatusChange


def change_ids(response) -> list[int]:
    return [int(n) for n in re.findall(r'data-change-id="(\d+)"', response.content.decode())]


@pytest.fixture
def changes(make_service):
    """Five status changes of three services in two sources, an hour apart."""
    alpha = make_service("alpha", "failed")
    bravo = make_service("bravo", "running")
    other = Source.objects.create(name="other", endpoint="http://127.0.0.1:9", project_id="p")
    charlie = make_service("charlie", "concerning", source=other)
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    made = []
    for n, (service, old, new) in enumerate(
        [
            (alpha, "running", "concerning"),
            (bravo, "", "deploying"),
            (alpha, "concerning", "failed"),
            (charlie, "running", "concerning"),
            (bravo, "deploying", "running"),
        ]
    ):
        run = PollRun.objects.create(source=service.source, started_at=start, ok=True)
        made.append(
            StatusChange.objects.create(
                service=service,
                source=service.source,
                poll_run=run,
                at=start + timedelta(hours=n),
                previous_poll_at=start + timedelta(hours=n, minutes=-1),
                from_status=old,
                to_status=new,
            )
        )
    return made


def test_it_lists_changes_newest_first(client, changes):
    response = client.get("/events/")
    assert response.status_code == 200
    assert change_ids(response) == [c.pk for c in reversed(changes)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("source=other", [3]),
        ("to=concerning", [3, 0]),
        ("from=running", [3, 0]),
        ("from=appeared", [1]),
        ("service=alph", [2, 0]),
        ("service=00000000-0000-4000-8000-000000000002", [4, 1]),
        ("after=2026-03-01T10:00", [4, 3, 2]),
        ("before=2026-03-01T10:00", [1, 0]),
        ("after=2026-03-01T09:30&before=2026-03-01T11:30&to=failed", [2]),
        ("source=nowhere", []),
    ],
)
def test_it_filters_changes(client, changes, query, expected):
    assert change_ids(client.get(f"/events/?{query}")) == [changes[n].pk for n in expected]


@pytest.mark.parametrize("query", ["after=yesterday", "to=" + "x" * 33, "page=0", "source=a/b"])
def test_it_answers_bad_event_filters_with_400(client, changes, query):
    response = client.get(f"/events/?{query}")
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    assert change_ids(response) == []


def test_it_says_a_change_happened_between_two_polls(client, changes):
    body = client.get("/events/?to=failed").content.decode()
    assert "after <time" in body and ">09:59:00 UTC</time>, by <time" in body
    assert '<span class="badge badge-warn">concerning</span>' in body
    assert '<span class="badge badge-bad">failed</span>' in body


def test_it_serves_the_events_partial_to_htmx(client, changes):
    body = client.get("/events/?source=other", headers={"HX-Request": "true"}).content.decode()
    assert '<section id="events"' in body and "<html" not in body


def test_it_serves_events_as_json(client, changes):
    data = client.get("/api/events?to=failed").json()
    assert data["count"] == 1
    assert data["events"] == [
        {
            "at": "2026-03-01T10:00:00Z",
            "previous_poll_at": "2026-03-01T09:59:00Z",
            "source": "fixture",
            "service_id": changes[2].service.service_id,
            "service_name": "alpha",
            "from_status": "concerning",
            "to_status": "failed",
            "transition_at": None,
        }
    ]
    assert client.get("/api/events?after=nope").status_code == 400


def test_it_keeps_a_constant_number_of_queries(client, changes, django_assert_max_num_queries):
    with django_assert_max_num_queries(12) as few:
        client.get("/events/")
    service = changes[0].service
    for n in range(40):
        StatusChange.objects.create(
            service=service,
            source=service.source,
            poll_run=changes[0].poll_run,
            at=changes[0].at + timedelta(minutes=n),
            from_status="running",
            to_status="failed",
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/events/")


def test_it_records_what_the_simulator_changed(client, polled, source, fleet, clock):
    before = {i["service_id"]: i["status"] for i in fleet.items(clock())}
    clock.advance(900)
    polling.poll_source(source)
    after = {i["service_id"]: i["status"] for i in fleet.items(clock())}
    changed = {sid for sid in before.keys() & after.keys() if before[sid] != after[sid]}
    data = client.get("/api/events?per_page=200").json()
    seen = {e["service_id"] for e in data["events"] if e["from_status"]}
    assert seen == changed
