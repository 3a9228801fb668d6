"""Bounded history: samples, status changes and poll runs older than the retention go."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from dashboard.models import PollRun, ServiceSample, StatusChange

log = logging.getLogger(__name__)
# Deleted in slices, each its own short transaction: one long delete would hold the write lock
# (on SQLite) while pages and the poller wait.
SLICE = 5000


@dataclass(frozen=True)
class Pruned:
    samples: int
    changes: int
    runs: int


def prune_history(days: int | None = None) -> Pruned:
    """Delete history older than `days` (default DASHBOARD_HISTORY_DAYS).

    The current state of every service stays, and so does each service's latest sample: an
    idle service's counters are then still known at the start of any chart's range.
    """
    days = settings.DASHBOARD_HISTORY_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    latest = ServiceSample.objects.values("service_id").annotate(last=Max("id")).values("last")
    samples = _delete_in_slices(ServiceSample.objects.filter(at__lt=cutoff).exclude(id__in=latest))
    changes = _delete_in_slices(StatusChange.objects.filter(at__lt=cutoff))
    # A run goes once nothing points at it any more.
    runs = _delete_in_slices(
        PollRun.objects.filter(started_at__lt=cutoff, samples=None, status_changes=None)
    )
    pruned = Pruned(samples, changes, runs)
    if samples or changes or runs:
        log.info("pruned history older than %s: %s", cutoff.isoformat(), pruned)
    return pruned


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
