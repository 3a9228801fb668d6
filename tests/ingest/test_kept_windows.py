"""The windows the poller keeps (ServiceWindow) against the one definition they come from
(baselines.window_columns), over random histories: polls at random gaps, counters that move,
reset and vanish, services that come and go, and history pruned and thinned."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from conftest import PROJECT_ID
from django.utils import timezone

from dashboard.baselines import WINDOWS, window_columns
from dashboard.ingest.retention import prune_history
from dashboard.ingest.windows import keep_windows
from dashboard.models import PollRun, Service, ServiceSample, ServiceWindow, Source
from dashboard.statuses import severity

NUMBERS = ("w_calls", "w_failures", "w_rate", "w_rank_rate")


def defined(source: Source, end: datetime) -> dict[tuple[str, int], tuple]:
    """Every live service's numbers per window, worked out by the definition itself."""
    found = {}
    live = Service.objects.filter(source=source, gone_at=None)
    for name, length in WINDOWS.items():
        rows = live.annotate(**window_columns(end - length)).values_list("pk", *NUMBERS)
        found.update({(name, pk): tuple(numbers) for pk, *numbers in rows})
    return found


def stored(source: Source) -> dict[tuple[str, int], tuple]:
    rows = ServiceWindow.objects.filter(service__source=source, service__gone_at=None)
    columns = ("window", "service_id", "calls", "failures", "rate", "rank_rate")
    return {(name, pk): tuple(numbers) for name, pk, *numbers in rows.values_list(*columns)}


class History:
    """A source polled at random moments; each poll writes what the poller would."""

    def __init__(self, rng: random.Random, source: Source):
        self.rng, self.source, self.n = rng, source, 0

    def poll(self, at: datetime) -> None:
        self.source.refresh_from_db()  # as the poller does: pruning may have changed it
        run = PollRun.objects.create(source=self.source, started_at=at, ok=True)
        fresh = [self._new(run) for _ in range(self.rng.randrange(4))]
        rewritten = list(fresh)
        for service in Service.objects.filter(source=self.source):
            roll = self.rng.random()
            if service.gone_at is None and roll < 0.05:
                Service.objects.filter(pk=service.pk).update(gone_at=at)
            elif roll < 0.5 or (service.gone_at is not None and roll < 0.7):
                if service.gone_at is not None:
                    fresh.append(service.pk)  # back: its windows were not kept while gone
                self._move(service, run)
                rewritten.append(service.pk)
        keep_windows(self.source, at, rewritten, fresh=fresh)

    def _new(self, run: PollRun) -> int:
        self.n += 1
        calls = self.rng.choice([None, 0, self.rng.randrange(1000)])
        service = Service.objects.create(
            source=self.source, service_id=f"svc-{self.n}", service_name=f"s{self.n}",
            status="running", severity=severity("running"), invocation_times=calls,
            failed_times=None if calls is None else self.rng.randrange(calls + 1),
            first_seen_at=run.started_at, fingerprint="-", raw={},
        )  # fmt: skip
        self._sample(service, run)
        return service.pk

    def _move(self, service: Service, run: PollRun) -> None:
        calls, failures = service.invocation_times, service.failed_times
        roll = self.rng.random()
        if roll < 0.05:  # the counters were reset
            calls, failures = self.rng.randrange(5), 0
        elif roll < 0.08:
            calls = failures = None
        else:
            calls = (calls or 0) + self.rng.randrange(60)
            failures = min(calls, (failures or 0) + self.rng.randrange(30))
        status = self.rng.choice(["running", "running", "failed", "concerning"])
        Service.objects.filter(pk=service.pk).update(
            invocation_times=calls, failed_times=failures, status=status,
            severity=severity(status), gone_at=None,
        )  # fmt: skip
        service.refresh_from_db()
        self._sample(service, run)

    def _sample(self, service: Service, run: PollRun) -> None:
        ServiceSample.objects.create(
            service=service, poll_run=run, at=run.started_at, status=service.status,
            invocation_times=service.invocation_times, failed_times=service.failed_times,
        )  # fmt: skip


@pytest.fixture
def history(db, request) -> History:
    source = Source.objects.create(
        name="random", endpoint="http://127.0.0.1:9", project_id=PROJECT_ID
    )
    return History(random.Random(request.param), source)


@pytest.mark.parametrize("history", range(3), indirect=True)
def test_kept_windows_equal_the_definition_after_every_poll(history, settings):
    settings.DASHBOARD_RATE_MIN_CALLS = 5
    now = timezone.now()
    # Nine days of polls, some seconds apart and some hours: every window's start passes
    # samples between two polls, and some polls jump past several at once.
    moments, at = [], now - timedelta(days=9)
    while at < now - timedelta(minutes=5):
        moments.append(at)
        at += timedelta(seconds=history.rng.choice([20, 400, 1800, 3 * 3600, 8 * 3600]))
    for at in moments:
        history.poll(at)
        assert stored(history.source) == defined(history.source, at), at
    assert ServiceWindow.objects.count() >= 4 * Service.objects.filter(gone_at=None).count()


@pytest.mark.parametrize("history", range(4), indirect=True)
def test_kept_windows_survive_pruning_and_thinning(history, settings):
    """Pruning deletes samples (some of them baselines); the next poll's windows are still the
    definition's, as of what history is left."""
    settings.DASHBOARD_HISTORY_DAYS = 2  # shorter than a week: the 7d window's baselines go
    settings.DASHBOARD_FULL_RESOLUTION_HOURS = history.rng.choice([1, 6, 24])
    now = timezone.now()
    at = now - timedelta(days=5)
    while at < now - timedelta(hours=2):
        history.poll(at)
        at += timedelta(seconds=history.rng.choice([60, 900, 3 * 3600]))
    if history.rng.random() < 0.5:
        # Polled lately: pruning works out the services it took baselines from; otherwise
        # the source's next poll works out all its windows.
        history.poll(now - timedelta(minutes=10))
    pruned = prune_history()
    assert pruned.samples and pruned.thinned  # something a window could have read went
    history.poll(now)
    assert stored(history.source) == defined(history.source, now)


def test_a_new_minimum_of_calls_ranks_every_window_again(db, settings):
    source = Source.objects.create(name="min", endpoint="http://127.0.0.1:9", project_id=PROJECT_ID)
    history = History(random.Random(3), source)
    now = timezone.now()
    for minutes in (90, 50, 20):
        history.poll(now - timedelta(minutes=minutes))
    ranked = ServiceWindow.objects.exclude(rank_rate=None).count()
    settings.DASHBOARD_RATE_MIN_CALLS = 1
    history.poll(now)
    assert ServiceWindow.objects.exclude(rank_rate=None).count() > ranked
    assert stored(source) == defined(source, now)


def test_a_first_poll_after_the_upgrade_works_out_every_window(db):
    """windows_as_of is NULL on a deployed database: the first poll fills every window."""
    source = Source.objects.create(name="old", endpoint="http://127.0.0.1:9", project_id=PROJECT_ID)
    history = History(random.Random(7), source)
    now = timezone.now()
    for minutes in (300, 120, 30):
        history.poll(now - timedelta(minutes=minutes))
    ServiceWindow.objects.all().delete()
    Source.objects.update(windows_as_of=None)
    source.refresh_from_db()
    history.poll(now)
    live = Service.objects.filter(gone_at=None).count()
    assert ServiceWindow.objects.filter(service__gone_at=None).count() == 4 * live
    assert stored(source) == defined(source, now)
