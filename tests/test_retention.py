from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from dashboard import polling
from dashboard.models import PollRun, Service, ServiceSample, StatusChange
from dashboard.retention import Pruned, prune_history


def age_everything(days: int) -> None:
    """Move all history `days` into the past, as if it had been recorded then."""
    shift = timedelta(days=days)
    for sample in ServiceSample.objects.all():
        ServiceSample.objects.filter(pk=sample.pk).update(at=sample.at - shift)
    for change in StatusChange.objects.all():
        StatusChange.objects.filter(pk=change.pk).update(at=change.at - shift)
    for run in PollRun.objects.all():
        PollRun.objects.filter(pk=run.pk).update(started_at=run.started_at - shift)


@pytest.fixture
def history(polled, source, clock):
    for _ in range(3):
        clock.advance(600)
        assert polling.poll_source(source).ok
    return source


def test_it_deletes_history_older_than_the_retention(history, settings):
    settings.DASHBOARD_HISTORY_DAYS = 7
    services = Service.objects.count()
    assert StatusChange.objects.exists()
    age_everything(days=8)
    pruned = prune_history()
    assert pruned.changes > 0 and pruned.runs > 0
    assert not StatusChange.objects.exists()
    # Only runs that a kept baseline sample still points at remain.
    kept_runs = set(ServiceSample.objects.values_list("poll_run_id", flat=True))
    assert set(PollRun.objects.values_list("id", flat=True)) == kept_runs
    assert Service.objects.count() == services  # the current state is never pruned


def test_it_keeps_each_services_latest_sample_as_a_baseline(history):
    age_everything(days=40)
    prune_history(days=30)
    kept = ServiceSample.objects.values_list("service_id", flat=True)
    assert sorted(kept) == sorted(Service.objects.values_list("id", flat=True))


def test_it_keeps_what_is_within_the_retention(history):
    counts = (ServiceSample.objects.count(), StatusChange.objects.count(), PollRun.objects.count())
    assert prune_history(days=1) == Pruned(0, 0, 0)
    assert (
        ServiceSample.objects.count(),
        StatusChange.objects.count(),
        PollRun.objects.count(),
    ) == (counts)


def test_the_command_prunes_and_says_how_much(history, capsys):
    age_everything(days=10)
    call_command("prune_history", "--days", "5")
    assert "status changes" in capsys.readouterr().out
    assert not StatusChange.objects.filter(at__lt=timezone.now() - timedelta(days=5)).exists()
    with pytest.raises(CommandError):
        call_command("prune_history", "--days", "0")
