from __future__ import annotations

import re
from datetime import timedelta

import pytest
from conftest import PROJECT_ID, TOKEN_ENV
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.ingest import poll as polling
from dashboard.modelarts import ServiceRecord
from dashboard.models import PollRun, Service, ServiceSample, Source, StatusChange


def _current(fleet, clock) -> dict[str, dict]:
    return {item["service_id"]: item for item in fleet.items(clock())}


def test_it_writes_every_service_of_the_fleet(polled, fleet, clock):
    expected = _current(fleet, clock)
    stored = {s.service_id: s for s in Service.objects.all()}
    assert set(stored) == set(expected)
    assert polled.ok and polled.complete
    assert polled.created_count == len(expected) == polled.fetched_count == polled.total_count
    some_id, item = next(iter(expected.items()))
    assert stored[some_id].service_name == item["service_name"]
    assert stored[some_id].status == item["status"]
    assert stored[some_id].invocation_times == item["invocation_times"]
    assert stored[some_id].raw == item
    record = ServiceRecord.from_json(item)
    assert stored[some_id].publish_at == record.publish_at is not None
    assert stored[some_id].status_changed_at == record.transition_at is not None
    assert stored[some_id].first_seen_at == polled.started_at


def test_it_derives_failure_rate_from_the_counters(polled):
    service = Service.objects.filter(invocation_times__gt=0).first()
    assert service.failure_rate == pytest.approx(service.failed_times / service.invocation_times)


def test_it_writes_nothing_but_the_run_when_nothing_changed(polled, source):
    samples = ServiceSample.objects.count()
    run = polling.poll_source(source)
    assert run.ok
    assert (run.created_count, run.updated_count, run.gone_count) == (0, 0, 0)
    assert ServiceSample.objects.count() == samples
    assert StatusChange.objects.count() == 0


def test_it_records_changes_and_calls_since_the_previous_poll(polled, source, fleet, clock):
    before = _current(fleet, clock)
    clock.advance(600)
    after = _current(fleet, clock)
    run = polling.poll_source(source)
    assert run.ok

    changed_status = {
        sid for sid in after.keys() & before.keys() if before[sid]["status"] != after[sid]["status"]
    }
    assert changed_status, "the simulated fleet should change status within ten minutes"
    changes = StatusChange.objects.filter(poll_run=run).exclude(from_status="")
    assert {c.service.service_id for c in changes} == changed_status
    for change in changes:
        assert change.from_status == before[change.service.service_id]["status"]
        assert change.to_status == after[change.service.service_id]["status"]
        assert change.previous_poll_at == polled.started_at

    busy = next(
        sid
        for sid in after
        if sid in before and after[sid]["invocation_times"] > before[sid]["invocation_times"]
    )
    service = Service.objects.get(service_id=busy)
    assert service.calls_delta == after[busy]["invocation_times"] - before[busy]["invocation_times"]
    assert ServiceSample.objects.filter(service=service, poll_run=run).count() == 1


def test_it_resets_calls_since_previous_poll_when_counters_stand_still(polled, source, clock):
    clock.advance(120)
    polling.poll_source(source)
    assert Service.objects.filter(calls_delta__gt=0).exists()
    run = polling.poll_source(source)  # the clock has not moved: no calls in between
    assert run.ok
    assert not Service.objects.filter(calls_delta__gt=0).exists()


def test_it_sends_no_write_to_the_service_tables_when_nothing_changed(polled, source):
    with CaptureQueriesContext(connection) as queries:
        run = polling.poll_source(source)
    assert run.ok
    # executemany is captured as "N times: <sql>".
    statements = [re.sub(r"^\d+ times: ", "", q["sql"]) for q in queries.captured_queries]
    writes = [sql for sql in statements if sql.upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    # Only the run itself and the source's claim and freshness columns.
    assert writes and all(
        "dashboard_pollrun" in sql or "dashboard_source" in sql for sql in writes
    ), writes


def test_it_leaves_calls_since_the_previous_poll_unknown_until_counters_move(polled, source):
    # Known only from the second sighting on; an unchanged poll does not rewrite every row
    # to say "0" (an idle fleet costs nothing), so it stays unknown until the counters move.
    run = polling.poll_source(source)
    assert run.updated_count == 0
    assert not Service.objects.filter(calls_delta__isnull=False).exists()


def test_it_counts_the_rows_whose_calls_since_the_previous_poll_it_reset(polled, source, clock):
    clock.advance(120)
    polling.poll_source(source)
    moved = Service.objects.exclude(calls_delta=0).exclude(calls_delta=None)
    moved |= Service.objects.exclude(failures_delta=0).exclude(failures_delta=None)
    reset = set(moved.values_list("pk", flat=True))
    assert reset

    run = polling.poll_source(source)  # the clock has not moved: no calls in between

    assert run.updated_count == len(reset)
    assert not Service.objects.filter(calls_delta__gt=0).exists()
    assert not Service.objects.filter(failures_delta__gt=0).exists()


def test_it_writes_no_history_and_counts_no_row_for_a_reset_alone(polled, source, clock):
    clock.advance(120)
    polling.poll_source(source)
    samples, changes = ServiceSample.objects.count(), StatusChange.objects.count()

    polling.poll_source(source)
    run = polling.poll_source(source)  # nothing left to reset

    assert (ServiceSample.objects.count(), StatusChange.objects.count()) == (samples, changes)
    assert (run.created_count, run.updated_count, run.gone_count) == (0, 0, 0)


def test_it_reports_new_services_as_status_changes(polled, source, fleet, clock):
    before = set(_current(fleet, clock))
    clock.advance(3 * 3600)
    appeared = set(_current(fleet, clock)) - before
    assert appeared, "the simulated fleet publishes new services over time"
    run = polling.poll_source(source)
    new = StatusChange.objects.filter(poll_run=run, from_status="")
    assert {c.service.service_id for c in new} == appeared


def test_it_marks_services_missing_from_a_complete_snapshot_gone(polled, source):
    ghost = Service.objects.first()
    ghost.pk = None
    ghost.service_id = "00000000-0000-4000-8000-00000000dead"
    ghost.save()
    run = polling.poll_source(source)
    ghost.refresh_from_db()
    assert run.gone_count == 1
    assert ghost.gone_at == run.started_at
    assert Service.objects.filter(gone_at=None).count() == polled.fetched_count


def test_it_keeps_the_last_snapshot_when_a_poll_fails(polled, source, monkeypatch):
    before = list(Service.objects.order_by("id").values())
    monkeypatch.setenv(TOKEN_ENV, "a-revoked-token")
    run = polling.poll_source(source)
    source.refresh_from_db()
    assert not run.ok
    assert run.error_kind == "api-error"
    assert "ModelArts.0203" in run.error_message
    assert "a-revoked-token" not in run.error_message
    assert list(Service.objects.order_by("id").values()) == before
    assert source.last_success_at == polled.started_at
    assert source.failures_since_success == 1
    assert source.last_error == run.error_message


def test_it_discards_a_snapshot_when_a_row_changed_under_it(polled, source, monkeypatch):
    # A snapshot keeps only the ids of services it found unchanged: if one of those rows
    # changes before the write (by hand, say), it cannot be written and must not be.
    fetch = polling._fetch

    def fetch_then_edit(*args):
        snapshot = fetch(*args)
        Service.objects.filter(pk=Service.objects.order_by("pk")[0].pk).update(fingerprint="x")
        return snapshot

    def stored() -> list[dict]:
        rows = Service.objects.order_by("id").values()
        return [{k: v for k, v in row.items() if k != "fingerprint"} for row in rows]

    monkeypatch.setattr(polling, "_fetch", fetch_then_edit)
    before, samples = stored(), ServiceSample.objects.count()

    run = polling.poll_source(source)

    assert (run.ok, run.error_kind) == (False, "conflict")
    assert "during the poll" in run.error_message
    assert (stored(), ServiceSample.objects.count()) == (before, samples)


def test_it_records_an_unreachable_endpoint_as_a_failed_poll(polled, source, simulator):
    simulator.stop()
    run = polling.poll_source(source)
    assert not run.ok
    assert run.error_kind == "unreachable"
    assert "127.0.0.1" in run.error_message
    assert PollRun.objects.filter(ok=False).count() == 1
    assert Service.objects.count() == polled.created_count


def test_it_reports_a_missing_token_variable_without_calling_the_api(source, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV)
    run = polling.poll_source(source)
    assert not run.ok
    assert run.error_kind == "config"
    assert TOKEN_ENV in run.error_message
    assert not Service.objects.exists()


def test_it_refuses_to_poll_a_source_claimed_by_another_poller(source):
    Source.objects.filter(pk=source.pk).update(
        claimed_by="elsewhere:1", claim_expires_at=timezone.now() + timedelta(minutes=2)
    )
    with pytest.raises(polling.SourceBusy):
        polling.poll_source(source)
    assert not PollRun.objects.exists()


def test_it_takes_over_an_expired_claim(source):
    Source.objects.filter(pk=source.pk).update(
        claimed_by="crashed:1", claim_expires_at=timezone.now() - timedelta(minutes=2)
    )
    assert polling.poll_source(source).ok
    source.refresh_from_db()
    assert source.claimed_by == "" and source.claim_expires_at is None


def test_it_polls_a_workspace_when_the_source_names_one(source):
    source.workspace_id = "no-such-workspace"
    source.save()
    run = polling.poll_source(source)
    assert not run.ok
    assert "ModelArts.0102" in run.error_message


def test_it_rejects_a_malformed_project_id_as_configuration(source):
    source.project_id = "../../etc"
    source.save()
    run = polling.poll_source(source)
    assert not run.ok
    assert run.error_kind == "config"
    assert PROJECT_ID not in run.error_message


def test_it_polls_a_simulator_without_authentication(db, fleet):
    from dashboard.devtools.simulator import SimulatorServer

    with SimulatorServer(fleet, project_id=PROJECT_ID, auth="none") as open_api:
        source = Source.objects.create(
            name="open", endpoint=open_api.url, project_id=PROJECT_ID, auth_kind="none"
        )
        run = polling.poll_source(source)
    assert run.ok
    assert run.fetched_count == len(fleet.items())


def test_it_leaves_no_claim_on_the_callers_object(source):
    polling.poll_source(source)
    source.save()  # a caller saving its copy later must not bring the claim back
    assert polling.poll_source(source).ok


def test_it_gives_the_bigger_page_cache_back_after_writing(polled, source, clock):
    """SQLite writes a snapshot with a bigger page cache; PostgreSQL is not asked about one."""
    clock.advance(60)
    with CaptureQueriesContext(connection) as queries, connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA cache_size")
            (before,) = cursor.fetchone()
        assert polling.poll_source(source).ok
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA cache_size")
            assert cursor.fetchone() == (before,)
    asked = [q["sql"] for q in queries.captured_queries if "cache_size =" in q["sql"]]
    assert bool(asked) == (connection.vendor == "sqlite")


def _analyzed(run) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        run()
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith("ANALYZE")]


def _planned_rows(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        return cursor.fetchone()[0]


@pytest.mark.postgresql
def test_a_poll_that_adds_a_tenth_of_the_fleet_samples_the_tables_for_the_planner(
    source, fleet, clock
):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE dashboard_service")  # empty: the planner knows 0 rows
    assert _planned_rows("dashboard_service") == 0
    first = _analyzed(lambda: polling.poll_source(source))
    assert len(first) == 4
    assert _planned_rows("dashboard_service") == len(_current(fleet, clock))
    assert _planned_rows("dashboard_servicewindow") == 4 * len(_current(fleet, clock))
    # Nothing added: the statistics stand, autovacuum keeps them as the fleet changes.
    clock.advance(600)
    assert _analyzed(lambda: polling.poll_source(source)) == []
