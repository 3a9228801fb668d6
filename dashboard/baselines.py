"""A counter as of a moment, and how much it grew since: the one definition of the table's
windows (?window=), read by the poller, which keeps every service's windows (ingest.windows),
and by the queries of what changed since a moment (queries.windows)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, Exists, F, FloatField, OuterRef, Subquery, When
from django.db.models.functions import Cast

from dashboard.models import ServiceSample

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


def baseline(column: str, start: datetime) -> Case:
    """The counter at `start`; for a service first seen after it, its first sample; else NULL
    (history pruned or never kept: no number is better than a wrong one)."""
    before = ServiceSample.objects.filter(service=OuterRef("pk"), at__lte=start)
    return Case(
        When(Exists(before), then=sample_at(column, start)),
        When(first_seen_at__gt=start, then=sample_at(column, start, latest=False)),
        default=None,
    )


def increase(column: str, base: str) -> Case:
    """How much a counter grew since its baseline; NULL when unknown or reset (it went down)."""
    return Case(
        When(**{f"{column}__gte": F(base)}, then=F(column) - F(base)),
        default=None,
    )


def ratio(part: str, whole: str) -> Cast:
    """part / whole as a float (integer division would truncate it)."""
    return Cast(part, FloatField()) / Cast(whole, FloatField())


def window_columns(start: datetime) -> dict:
    """A service's numbers from `start` to its current counters, as annotations."""
    return {
        "w_base_calls": baseline("invocation_times", start),
        "w_base_failures": baseline("failed_times", start),
        "w_calls": increase("invocation_times", "w_base_calls"),
        "w_failures": increase("failed_times", "w_base_failures"),
        "w_rate": Case(
            When(w_calls__gt=0, then=ratio("w_failures", "w_calls")),
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
