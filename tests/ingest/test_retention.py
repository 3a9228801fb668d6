from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from dashboard.ingest import poll as polling
from dashboard.ingest.retention import Pruned, prune_history
from dashboard.models import PollRun, Service, ServiceSample, StatusChange


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


def test_samples_older_than_a_day_keep_the_last_of_each_hour(run, make_service, settings):
    """Busy services write a sample every poll; past the full-resolution period one an hour."""
    settings.DASHBOARD_FULL_RESOLUTION_HOURS = 24
    busy, quiet = make_service("busy"), make_service("quiet")
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)

    def sample(service, at, calls):
        return ServiceSample.objects.create(
            service=service, poll_run=run, at=at, status="running", invocation_times=calls
        )

    old_hour = hour - timedelta(hours=30)
    kept_old = [
        # Every 30 s for the hour: only the 120th stays.
        [sample(busy, old_hour + timedelta(seconds=30 * i), i) for i in range(120)][-1],
        sample(quiet, old_hour + timedelta(minutes=10), 7),  # alone in its hour: stays
        sample(busy, old_hour + timedelta(hours=1, minutes=5), 500),  # next hour's only one
    ]
    recent = [sample(busy, hour - timedelta(hours=2, seconds=30 * i), 1000 - i) for i in range(5)]

    assert prune_history(days=30).thinned == 119
    kept = set(ServiceSample.objects.values_list("id", flat=True))
    assert kept == {s.pk for s in kept_old + recent}
    # Run again: nothing more to thin.
    assert prune_history(days=30).thinned == 0


def test_thinning_goes_on_from_where_it_stopped_and_the_command_covers_everything(
    run, make_service, settings, capsys
):
    settings.DASHBOARD_FULL_RESOLUTION_HOURS = 24
    service = make_service("busy")
    ten_days_ago = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=10)

    def three_samples_in_the_hour_of(at):
        for i in range(3):
            ServiceSample.objects.create(
                service=service, poll_run=run, at=at + timedelta(minutes=i), status="running"
            )

    three_samples_in_the_hour_of(ten_days_ago)
    assert prune_history().thinned == 2  # the first pruning covers the retention
    service.source.refresh_from_db()
    assert service.source.samples_thinned_until > ten_days_ago
    # Samples that appear behind the boundary (a clock set back, say) wait for the command.
    three_samples_in_the_hour_of(ten_days_ago - timedelta(days=1))
    assert prune_history().thinned == 0
    call_command("prune_history")
    assert "thinned 2 older samples" in capsys.readouterr().out
    assert ServiceSample.objects.filter(service=service).count() == 2
