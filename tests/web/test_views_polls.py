from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.models import PollRun, Source


def run_ids(response) -> list[int]:
    return [int(n) for n in re.findall(r'data-run-id="(\d+)"', response.content.decode())]


@pytest.fixture
def runs(db):
    a = Source.objects.create(name="cn-north-4", endpoint="http://127.0.0.1:9", project_id="p")
    b = Source.objects.create(name="ap-southeast-3", endpoint="http://127.0.0.1:9", project_id="p")
    start = timezone.now() - timedelta(hours=1)
    made = []
    for n, (source, ok) in enumerate([(a, True), (b, False), (a, False), (b, True), (a, True)]):
        made.append(
            PollRun.objects.create(
                source=source,
                started_at=start + timedelta(minutes=n),
                ok=ok,
                complete=ok,
                error_kind="" if ok else "api-error",
                error_message="" if ok else f"ModelArts.0202: token expired (run {n})",
                fetched_count=10 if ok else None,
                total_count=10 if ok else None,
            )
        )
    return made


def test_it_lists_polls_newest_first(client, runs):
    response = client.get("/polls/")
    assert response.status_code == 200
    assert run_ids(response) == [r.pk for r in reversed(runs)]
    assert "ModelArts.0202: token expired (run 2)" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("outcome=failed", [2, 1]),
        ("outcome=ok", [4, 3, 0]),
        ("source=ap-southeast-3", [3, 1]),
        ("source=cn-north-4&outcome=failed", [2]),
        ("source=nowhere", []),
    ],
)
def test_it_filters_polls_by_source_and_outcome(client, runs, query, expected):
    assert run_ids(client.get(f"/polls/?{query}")) == [runs[n].pk for n in expected]


def test_it_serves_the_polls_partial_to_htmx(client, runs):
    body = client.get("/polls/?outcome=failed", headers={"HX-Request": "true"}).content.decode()
    assert '<section id="polls"' in body
    assert "<html" not in body


@pytest.mark.parametrize("query", ["outcome=maybe", "page=0", "source=a/b"])
def test_it_answers_bad_poll_filters_with_400(client, runs, query):
    response = client.get(f"/polls/?{query}")
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    assert run_ids(response) == []


def test_it_marks_incomplete_snapshots(client, runs):
    PollRun.objects.filter(pk=runs[0].pk).update(complete=False, total_count=12)
    body = client.get("/polls/").content.decode()
    assert ">incomplete<" in body
    assert "10 of 12" in body


def test_healthz_is_ok_while_every_source_is_fresh(client, runs):
    Source.objects.update(last_success_at=timezone.now(), last_poll_at=timezone.now())
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_healthz_names_the_stale_source_and_its_error(client, runs):
    now = timezone.now()
    Source.objects.update(last_success_at=now, last_poll_at=now)
    Source.objects.filter(name="ap-southeast-3").update(
        last_success_at=now - timedelta(minutes=10), last_error="could not reach host: refused"
    )
    response = client.get("/healthz")
    assert response.status_code == 503
    [problem] = response.json()["problems"]
    assert problem.startswith("ap-southeast-3: last successful poll 6")
    assert problem.endswith("last error: could not reach host: refused")


def test_healthz_fails_without_any_source(client, db):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["problems"] == ["no source is configured"]


def test_it_explains_an_incomplete_poll(client, runs):
    PollRun.objects.filter(pk=runs[0].pk).update(
        complete=False, warnings="1 unreadable item(s) skipped: page 1: services[3]: no id."
    )
    body = client.get("/polls/").content.decode()
    assert "1 unreadable item(s) skipped: page 1: services[3]: no id." in body


def test_the_service_page_flags_a_source_whose_last_poll_was_incomplete(client, runs):
    Source.objects.update(last_success_at=timezone.now(), last_poll_at=timezone.now())
    Source.objects.filter(name="cn-north-4").update(last_poll_complete=False)
    body = client.get("/").content.decode()
    assert 'href="/polls/?source=cn-north-4"' in body
    assert "last poll incomplete" in body
