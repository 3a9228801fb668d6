"""Counters over a window of time, and what changed since a moment, from the samples the
poller keeps: the table's ?window= and ?since= columns."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    Exists,
    F,
    FloatField,
    OuterRef,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast

from dashboard.models import ServiceSample, StatusChange

WINDOWS: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}


def sample_at(column: str, moment: datetime, *, latest: bool = True) -> Subquery:
    """A counter of the outer service as of `moment`: its latest sample at or before then
    (samples are written only on change), or with latest=False its first sample after."""
    samples = ServiceSample.objects.filter(service=OuterRef("pk"))
    if latest:
        samples = samples.filter(at__lte=moment).order_by("-at", "-id")
    else:
        samples = samples.filter(at__gt=moment).order_by("at", "id")
    return Subquery(samples.values(column)[:1])


def _baseline(column: str, start: datetime) -> Case:
    """The counter at `start`; for a service first seen after it, its first sample; else NULL
    (history pruned or never kept: no number is better than a wrong one)."""
    before = ServiceSample.objects.filter(service=OuterRef("pk"), at__lte=start)
    return Case(
        When(Exists(before), then=sample_at(column, start)),
        When(first_seen_at__gt=start, then=sample_at(column, start, latest=False)),
        default=None,
    )


def _increase(column: str, baseline: str) -> Case:
    """How much a counter grew since its baseline; NULL when unknown or reset (it went down)."""
    return Case(
        When(**{f"{column}__gte": F(baseline)}, then=F(column) - F(baseline)),
        default=None,
    )


def window_columns(start: datetime) -> dict:
    return {
        "w_base_calls": _baseline("invocation_times", start),
        "w_base_failures": _baseline("failed_times", start),
        "w_calls": _increase("invocation_times", "w_base_calls"),
        "w_failures": _increase("failed_times", "w_base_failures"),
        "w_rate": Case(
            When(
                w_calls__gt=0,
                then=Cast("w_failures", FloatField()) / Cast("w_calls", FloatField()),
            ),
            default=None,
            output_field=FloatField(),
        ),
        # "Failing now" ranks a rate only over enough calls: 1 failure in 1 call is noise.
        "w_rank_rate": Case(
            When(w_calls__gte=settings.DASHBOARD_RATE_MIN_CALLS, then=F("w_rate")),
            default=None,
            output_field=FloatField(),
        ),
    }


def since_columns(since: datetime) -> dict:
    changed = StatusChange.objects.filter(service=OuterRef("pk"), at__gte=since)
    return {
        "since_status": Exists(changed),
        "since_base_failures": _baseline("failed_times", since),
        "since_failing": Case(
            When(failed_times__gt=F("since_base_failures"), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
    }


# The windowed and since columns a page shows (the others are steps towards them).
WINDOW_FIELDS = ("w_calls", "w_failures", "w_rate")
SINCE_FIELDS = ("since_status", "since_failing")
