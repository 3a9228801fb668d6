"""Bounded history: samples, status changes and poll runs older than the retention go, and
samples older than a day are thinned to one per service per hour.

A busy service writes a sample every poll (2,880 a day at 30 s): kept for a month, that is
hundreds of megabytes per hundred services. Charts over days and week-long windows need no
more than hourly points, so older samples keep only the last of each hour; status changes
are rare and all kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Max, OuterRef, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from dashboard.baselines import WINDOWS
from dashboard.ingest.windows import forget_windows, rework_windows
from dashboard.models import PollRun, ServiceSample, Source, StatusChange

log = logging.getLogger(__name__)
# Deleted in slices, each its own short transaction: one long delete would hold the write lock
# (on SQLite) while pages and the poller wait.
SLICE = 5000
# Thinned a few hundred services at a time, for the same reason.
SERVICES_PER_THINNING = 500
# How long ago a source's windows may end and still be reworked service by service (see
# _baselines_among); pollers bring them up to date every interval.
BASELINE_SLACK = timedelta(hours=1)


@dataclass(frozen=True)
class Pruned:
    samples: int
    changes: int
    runs: int
    thinned: int = 0


def prune_history(days: int | None = None, *, thin_all: bool = False) -> Pruned:
    """Delete history older than `days` (default DASHBOARD_HISTORY_DAYS), then thin samples.

    The current state of every service stays, and so does each service's latest sample: an
    idle service's counters are then still known at the start of any chart's range. Thinning
    goes on from where the previous pruning stopped, or covers the whole retention with
    thin_all.
    """
    days = settings.DASHBOARD_HISTORY_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    thinned = sum(thin_samples(source, cutoff, restart=thin_all) for source in Source.objects.all())
    # Old samples found through their poll runs (indexed by time); a sample is as old as its
    # run. The latest sample of a service stays: no newer one exists.
    newer = ServiceSample.objects.filter(service=OuterRef("service"), at__gt=OuterRef("at"))
    old_samples = ServiceSample.objects.filter(
        poll_run__in=PollRun.objects.filter(started_at__lt=cutoff), at__lt=cutoff
    ).filter(Exists(newer))
    baselines = _baselines_among(old_samples, cutoff)
    samples = _delete_in_slices(old_samples)
    rework_windows(baselines)
    changes = _delete_in_slices(StatusChange.objects.filter(at__lt=cutoff))
    # A run goes once nothing points at it any more.
    runs = _delete_in_slices(
        PollRun.objects.filter(started_at__lt=cutoff, samples=None, status_changes=None)
    )
    pruned = Pruned(samples, changes, runs, thinned)
    if samples or changes or runs or thinned:
        log.info("pruned history older than %s: %s", cutoff.isoformat(), pruned)
    return pruned


def thin_samples(source: Source, cutoff, *, restart: bool = False) -> int:
    """Keep only the last sample of each of the source's services in each whole hour between
    where the previous thinning stopped (or the retention's cutoff) and the full-resolution
    period (DASHBOARD_FULL_RESOLUTION_HOURS); the number of samples deleted.

    An hour's last sample is also the latest sample at its end, so a window or chart that
    starts at an hour boundary reads the same baseline as before; one that starts mid-hour
    reads a baseline at most an hour earlier.
    """
    end = _hour_floor(timezone.now() - timedelta(hours=settings.DASHBOARD_FULL_RESOLUTION_HOURS))
    start = _hour_floor(cutoff)
    if source.samples_thinned_until and not restart:
        start = max(start, source.samples_thinned_until)
    if start >= end:
        return 0
    service_ids = list(source.services.order_by("id").values_list("id", flat=True))
    thinned = 0
    # One statement per group of services over the whole period: it reads their rows through
    # the (service, at) index, however many hours the period has.
    for first in range(0, len(service_ids), SERVICES_PER_THINNING):
        group = service_ids[first : first + SERVICES_PER_THINNING]
        old = ServiceSample.objects.filter(service_id__in=group, at__gte=start, at__lt=end)
        hourly = old.annotate(hour=TruncHour("at")).values("service_id", "hour")
        last = hourly.annotate(last=Max("id")).values("last")
        with transaction.atomic():
            thinned += old.exclude(id__in=last).delete()[0]
    Source.objects.filter(pk=source.pk).update(samples_thinned_until=end)
    if thinned and _window_starts_within(source, start, end):
        forget_windows(source)
    elif thinned:
        # A service first seen in the period counts a window that starts before it from its
        # first sample, which thinning may have taken.
        born = source.services.filter(first_seen_at__gte=start, first_seen_at__lt=end)
        rework_windows(sorted(born.values_list("pk", flat=True)))
    return thinned


def _window_starts_within(source: Source, start: datetime, end: datetime) -> bool:
    """Whether a window of the source starts in a thinned period. Only then can thinning have
    taken a baseline: every deleted sample has a kept one later in its hour, so it was one only
    for a window starting in that hour."""
    as_of = source.windows_as_of
    return as_of is not None and any(start <= as_of - length < end for length in WINDOWS.values())


def _baselines_among(old_samples: QuerySet, cutoff: datetime) -> list[int]:
    """The services whose old samples may hold a window's baseline: with history kept longer
    than the longest window, those with no sample from the cutoff to the window's start (any
    other has a newer sample at or before every window's start); with a shorter history, all
    of them (a window may count from their first sample). A source whose windows end long ago
    is worked out afresh instead."""
    now = timezone.now()
    for source in Source.objects.filter(windows_as_of__lt=now - BASELINE_SLACK):
        forget_windows(source)
    bound = now - max(WINDOWS.values()) - BASELINE_SLACK
    if cutoff < bound:
        between = ServiceSample.objects.filter(
            service=OuterRef("service"), at__gte=cutoff, at__lte=bound
        )
        old_samples = old_samples.exclude(Exists(between))
    idle = old_samples.values_list("service_id", flat=True)
    return sorted(set(idle.iterator(chunk_size=SLICE)))


def _hour_floor(moment):
    return moment.replace(minute=0, second=0, microsecond=0)


def _delete_in_slices(rows: QuerySet) -> int:
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(rows.values_list("id", flat=True)[:SLICE])
            if not ids:
                return deleted
            # The model's own manager: deleting by id cascades the same way as the queryset.
            rows.model.objects.filter(id__in=ids).delete()
        deleted += len(ids)
