"""Every fault the simulator can inject, polled end to end: what each one leaves behind.

Most polls here use a client with the real retry policy's shape but tiny waits; a few go through
build_client, as poll_services does, to show the real policy and timeouts at work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from conftest import PROJECT_ID, TOKEN, TOKEN_ENV

from dashboard.devtools.simulator import Fleet, ManualClock, SimulatorServer
from dashboard.ingest import poll as polling
from dashboard.modelarts import ModelArtsClient, RetryPolicy, TokenAuth
from dashboard.models import PollRun, Service, ServiceSample, Source, StatusChange

QUICK = RetryPolicy(backoff=0.01, max_backoff=0.02, retry_after_cap=0.2)
ATTEMPTS = QUICK.attempts
GHOST_ID = "00000000-0000-4000-8000-00000000dead"


def quick_client(
    source: Source, *, timeout: float = 2.0, sleep: Callable[[float], object] = time.sleep
) -> ModelArtsClient:
    return ModelArtsClient(
        source.endpoint,
        source.project_id,
        TokenAuth(TOKEN),
        timeout=timeout,
        retry=QUICK,
        offset_mode=source.offset_mode,
        sleep=sleep,
    )


def poll(source: Source, **options) -> PollRun:
    with quick_client(source, **options) as client:
        return polling.poll_source(source, client=client)


@dataclass(frozen=True)
class Kept:
    """What a failed poll must leave exactly as it was."""

    services: list[dict]
    samples: int
    changes: int
    last_success_at: datetime | None
    failures: int


def kept(source: Source) -> Kept:
    source.refresh_from_db()
    return Kept(
        services=list(Service.objects.order_by("id").values()),
        samples=ServiceSample.objects.count(),
        changes=StatusChange.objects.count(),
        last_success_at=source.last_success_at,
        failures=source.failures_since_success,
    )


def assert_recorded_failure(
    run: PollRun, source: Source, before: Kept, kind: str, *says: str
) -> None:
    assert PollRun.objects.filter(pk=run.pk, ok=False).exists()
    assert not run.ok
    assert run.error_kind == kind
    for text in says:
        assert text in run.error_message
    assert TOKEN not in run.error_message
    after = kept(source)
    assert after.services == before.services
    assert (after.samples, after.changes) == (before.samples, before.changes)
    assert after.last_success_at == before.last_success_at
    assert after.failures == before.failures + 1
    assert source.last_error == run.error_message
    # Last, so that a failure here means everything above held: with several sources in several
    # regions, an operator needs to know which endpoint failed.
    host = urlsplit(source.endpoint).netloc
    assert host in run.error_message, f"no {host} in {run.error_message!r}"


def current(fleet: Fleet, clock: ManualClock) -> dict[str, dict]:
    return {item["service_id"]: item for item in fleet.items(clock())}


def assert_matches_fleet(fleet: Fleet, clock: ManualClock, ids: set[str] | None = None) -> None:
    """The rows of the services listed now (or of `ids` among them) hold what the API says."""
    listed = current(fleet, clock)
    rows = {s.service_id: s for s in Service.objects.filter(service_id__in=ids or set(listed))}
    assert set(rows) == (ids or set(listed))
    for service_id, row in rows.items():
        item = listed[service_id]
        assert (row.status, row.invocation_times) == (item["status"], item["invocation_times"])


def plant_ghost() -> Service:
    """A stored service the API no longer lists."""
    ghost = Service.objects.first()
    ghost.pk = None
    ghost.service_id = GHOST_ID
    ghost.save()
    return ghost


def listed_first_page(simulator: SimulatorServer) -> list[dict]:
    response = requests.get(
        f"{simulator.url}/v1/{PROJECT_ID}/services",
        headers={"X-Auth-Token": TOKEN},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["services"]


def offsets_requested(simulator: SimulatorServer) -> list[int]:
    return [
        int(parse_qs(urlsplit(target).query).get("offset", ["0"])[0])
        for _, target, _ in simulator.requests
    ]


# A fleet of more than one page: the poller reads pages of 1000.


@pytest.fixture
def big_fleet(clock: ManualClock) -> Fleet:
    return Fleet(size=2500, seed=11, clock=clock)


@pytest.fixture
def big_simulator(big_fleet: Fleet) -> Iterator[SimulatorServer]:
    with SimulatorServer(big_fleet, project_id=PROJECT_ID, auth="token", token=TOKEN) as server:
        yield server


@pytest.fixture
def big_source(db, big_simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> Source:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return Source.objects.create(
        name="big", endpoint=big_simulator.url, project_id=PROJECT_ID, token_env=TOKEN_ENV
    )


@pytest.fixture
def big_polled(big_source: Source) -> PollRun:
    run = poll(big_source)
    assert run.ok and run.complete, run.error_message
    assert run.pages >= 3
    big_source.refresh_from_db()
    return run


# Faults that clear, or never hurt


def test_it_waits_out_latency_below_the_timeout(polled, source, simulator, fleet, clock):
    clock.advance(600)
    simulator.inject("latency:0.3")
    requests_before = simulator.request_count
    run = poll(source, timeout=2.0)
    assert run.ok and run.complete
    assert simulator.request_count - requests_before == 1
    assert run.duration_ms >= 300
    assert_matches_fleet(fleet, clock)


RETRIED = [
    pytest.param("500", id="500"),
    pytest.param("502", id="502"),
    pytest.param("503", id="503"),
    pytest.param("504", id="504"),
    pytest.param("429:0.05", id="429"),
    pytest.param("429:0.05,gateway", id="429-gateway"),
    pytest.param("html-502", id="html-502"),
    pytest.param("truncated", id="truncated"),
    pytest.param("timeout:2", id="timeout"),
]


@pytest.mark.parametrize("fault", RETRIED)
def test_it_succeeds_when_a_fault_clears_within_the_attempts(
    polled, source, simulator, fleet, clock, fault
):
    clock.advance(600)
    simulator.inject(fault, times=ATTEMPTS - 1)
    requests_before = simulator.request_count
    run = poll(source, timeout=0.2)
    source.refresh_from_db()
    assert run.ok and run.complete, run.error_message
    assert simulator.request_count - requests_before == ATTEMPTS
    assert run.updated_count > 0
    assert_matches_fleet(fleet, clock)
    assert source.last_success_at == run.started_at
    assert source.failures_since_success == 0


def test_it_honours_retry_after_on_a_429(polled, source, simulator):
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    simulator.inject("429:0.15")
    run = poll(source, sleep=sleep)
    assert run.ok
    assert slept == [0.15]


def test_it_caps_a_long_retry_after(polled, source, simulator):
    slept: list[float] = []
    simulator.inject("429:60")
    run = poll(source, sleep=slept.append)
    assert run.ok
    assert slept == [QUICK.retry_after_cap]


# Faults that last: a failed poll, recorded, and nothing else touched

PERSISTENT = [
    pytest.param("500", "api-error", ("ModelArts.3505", "HTTP 500"), id="500"),
    pytest.param("502", "api-error", ("ModelArts.4302", "HTTP 502"), id="502"),
    pytest.param("503", "api-error", ("ModelArts.4700", "HTTP 503"), id="503"),
    pytest.param("504", "api-error", ("ModelArts.4503", "HTTP 504"), id="504"),
    pytest.param("429:0.05", "api-error", ("ModelArts.4206", "HTTP 429"), id="429"),
    pytest.param("429:0.05,gateway", "api-error", ("APIGW.0308", "HTTP 429"), id="429-gateway"),
    pytest.param("html-502", "api-error", ("HTTP 502", "502 Bad Gateway", "nginx"), id="html-502"),
    pytest.param("truncated", "unreachable", ("mid-response",), id="truncated"),
    pytest.param("timeout:2", "unreachable", ("timed out after 0.2 s",), id="timeout"),
]


@pytest.mark.parametrize(("fault", "kind", "says"), PERSISTENT)
def test_it_records_a_failure_when_a_fault_outlasts_the_attempts(
    polled, source, simulator, clock, fault, kind, says
):
    clock.advance(600)  # a poll that got through would change rows
    before = kept(source)
    simulator.inject(fault, times=ATTEMPTS)
    requests_before = simulator.request_count
    run = poll(source, timeout=0.2)
    assert simulator.request_count - requests_before == ATTEMPTS
    assert_recorded_failure(run, source, before, kind, *says, f"after {ATTEMPTS} attempts")


@pytest.mark.parametrize("fault", ["malformed-json", "malformed-json:garbage"])
def test_it_records_a_body_that_is_not_json_as_a_bad_response(
    polled, source, simulator, clock, fault
):
    clock.advance(600)
    before = kept(source)
    simulator.inject(fault, times=ATTEMPTS)
    run = poll(source)
    assert_recorded_failure(run, source, before, "bad-response", "HTTP 200", "not JSON")
    assert '{"total_count"' in run.error_message  # the start of what came, quoted


# Through build_client, as poll_services polls: the real retry policy and timeouts


def test_it_retries_with_the_real_policy(polled, source, simulator, clock, fleet):
    clock.advance(600)
    simulator.inject("503")
    requests_before = simulator.request_count
    run = polling.poll_source(source)
    assert run.ok, run.error_message
    assert simulator.request_count - requests_before == 2
    assert_matches_fleet(fleet, clock)


def test_it_gives_up_with_the_real_policy(polled, source, simulator, clock):
    clock.advance(600)
    before = kept(source)
    attempts = RetryPolicy().attempts
    simulator.inject("503:retry-after=0.05", times=attempts)
    requests_before = simulator.request_count
    run = polling.poll_source(source)
    assert simulator.request_count - requests_before == attempts
    assert_recorded_failure(
        run, source, before, "api-error", "ModelArts.4700", f"after {attempts} attempts"
    )


def test_it_honours_retry_after_with_the_real_policy(polled, source, simulator):
    simulator.inject("429:0.3")
    run = polling.poll_source(source)
    assert run.ok, run.error_message
    assert run.duration_ms >= 300


def test_it_times_out_and_retries_with_the_real_client(polled, source, simulator, settings):
    settings.MODELARTS_TIMEOUT = 1
    simulator.inject("timeout:5")
    requests_before = simulator.request_count
    run = polling.poll_source(source)
    assert run.ok, run.error_message
    assert simulator.request_count - requests_before == 2
    assert run.duration_ms >= 1000


# Items the API garbles: kept apart, the rest stored, the snapshot flagged


def test_it_stores_the_readable_items_of_a_page_with_wrong_types(polled, source, simulator):
    listed = listed_first_page(simulator)
    simulator.inject("wrong-types")
    run = poll(source)
    source.refresh_from_db()
    assert run.ok, run.error_message
    assert not run.complete and not source.last_poll_complete
    assert run.fetched_count == run.total_count - 1
    counted_in_words = Service.objects.get(service_id=listed[0]["service_id"])
    assert (counted_in_words.invocation_times, counted_in_words.failed_times) == (None, None)
    assert counted_in_words.failure_rate is None
    assert "page 1: services[2]" in run.warnings and "service_id" in run.warnings
    assert "Nothing was marked gone" in run.warnings
    assert run.gone_count == 0
    nameless = Service.objects.get(service_id=listed[2]["service_id"])
    assert nameless.gone_at is None
    assert not Service.objects.exclude(gone_at=None).exists()


def test_it_marks_nothing_gone_from_an_incomplete_snapshot_but_does_from_a_complete_one(
    polled, source, simulator
):
    ghost = plant_ghost()
    simulator.inject("wrong-types")
    incomplete = poll(source)
    ghost.refresh_from_db()
    assert incomplete.ok and not incomplete.complete
    assert incomplete.gone_count == 0
    assert ghost.gone_at is None

    complete = poll(source)
    ghost.refresh_from_db()
    assert complete.ok and complete.complete
    assert complete.gone_count == 1
    assert ghost.gone_at == complete.started_at


# Pages that disagree with each other


def test_it_flags_a_total_count_that_drifts_on_page_2(
    big_polled, big_source, big_simulator, big_fleet, clock
):
    ghost = plant_ghost()
    clock.advance(600)
    big_simulator.inject("total-count-drift:5", page=1)
    run = poll(big_source)
    ghost.refresh_from_db()
    assert run.ok, run.error_message
    assert run.updated_count > 0
    assert_matches_fleet(big_fleet, clock)  # what was seen is updated
    # The listing changed under the pages: services may have shifted past the offsets unseen.
    assert not run.complete, "a total_count that changed between pages went unnoticed"
    assert run.gone_count == 0
    assert ghost.gone_at is None


def test_it_flags_a_total_count_that_drifts_on_the_last_page(
    big_polled, big_source, big_simulator, clock
):
    ghost = plant_ghost()
    big_simulator.inject("total-count-drift:5", page=big_polled.pages - 1)
    run = poll(big_source)
    ghost.refresh_from_db()
    assert run.ok, run.error_message
    assert not run.complete, "a total_count that changed between pages went unnoticed"
    assert ghost.gone_at is None


def test_it_deduplicates_ids_repeated_across_pages(
    big_polled, big_source, big_simulator, big_fleet, clock
):
    clock.advance(600)
    listed = current(big_fleet, clock)
    big_simulator.inject("duplicate-ids", page=1)  # page 2 repeats half of page 1
    run = poll(big_source)
    assert run.ok, run.error_message
    assert "500 duplicate item(s)" in run.warnings
    # Page 2 lost its own end to the repeats: the snapshot knows it is short.
    assert run.fetched_count == run.total_count - 500 == len(listed) - 500
    assert not run.complete
    assert run.gone_count == 0
    assert not Service.objects.exclude(gone_at=None).exists()
    # What the poll did read is stored as the API now says it is.
    touched = set(
        ServiceSample.objects.filter(poll_run=run).values_list("service__service_id", flat=True)
    )
    assert touched, "ten minutes should change some services"
    assert_matches_fleet(big_fleet, clock, touched)


# A fault on the last page: nothing of the earlier pages is written


@pytest.mark.parametrize(
    ("fault", "times", "kind"),
    [
        ("500", ATTEMPTS, "api-error"),
        ("truncated", ATTEMPTS, "unreachable"),
        ("malformed-json", 1, "bad-response"),
    ],
)
def test_it_writes_nothing_when_the_last_page_fails(
    big_polled, big_source, big_simulator, clock, fault, times, kind
):
    last = big_polled.pages - 1
    clock.advance(600)
    before = kept(big_source)
    big_simulator.inject(fault, times=times, page=last)
    requests_before = len(big_simulator.requests)
    run = poll(big_source)
    assert set(offsets_requested(big_simulator)[requests_before:]) == set(range(last + 1))
    assert_recorded_failure(run, big_source, before, kind)

    # The same poll without the fault does change rows: the failed one held them back.
    retried = poll(big_source)
    assert retried.ok and retried.updated_count > 0


def test_it_writes_no_service_when_the_last_page_of_a_first_poll_fails(big_source, big_simulator):
    big_simulator.inject("500", times=ATTEMPTS, page=2)
    run = poll(big_source)
    big_source.refresh_from_db()
    assert not run.ok
    assert "ModelArts.3505" in run.error_message
    assert 2 in offsets_requested(big_simulator)
    assert not Service.objects.exists()
    assert not ServiceSample.objects.exists()
    assert big_source.last_success_at is None
    assert big_source.failures_since_success == 1
