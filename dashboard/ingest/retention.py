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
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Max, OuterRef, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from dashboard.models import PollRun, ServiceSample, Source, StatusChange

log = logging.getLogger(__name__)
# Deleted in slices, each its own short transaction: one long delete would hold the write lock
# (on SQLite) while pages and the poller wait.
SLICE = 5000
# Thinned a few hundred services at a time, for the same reason.
SERVICES_PER_THINNING = 500


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
    samples = _delete_in_slices(old_samples)
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
    return thinned


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
