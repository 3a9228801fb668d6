"""Counters over a window of time, and what changed since a moment: the table's ?window= and
?since= columns.

A window's numbers are the ones the poller keeps for every service (models.ServiceWindow, see
ingest.windows): a view joins them instead of working out every service's window. They end at
the service's source's last successful poll.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    Exists,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)

from dashboard.baselines import WINDOWS, baseline, increase, ratio
from dashboard.models import Service, StatusChange

__all__ = ["WINDOWS", "with_window", "since_columns", "WINDOW_FIELDS", "SINCE_FIELDS"]

# The stored numbers, by the names the table's columns and sorts use.
_STORED = {
    "w_calls": "calls",
    "w_failures": "failures",
    "w_rate": "rate",
    "w_rank_rate": "rank_rate",
    # Copies of the service's own, so that "failing now" reads one index in order.
    "w_severity": "severity",
    "w_service_name": "service_name",
    "w_service_id": "service_id",
}


def with_window(services: QuerySet[Service], window: str) -> QuerySet[Service]:
    """The services joined to their stored numbers of `window` (a key of WINDOWS), as aliases.

    An inner join, so that a database can read a sort's index from the window's side: the
    poller keeps a row for every service it has stored. (The aliases reuse the filter's join;
    made the other way round, Django would join twice.)
    """
    joined = services.filter(windows__window=window)
    return joined.alias(**{name: F(f"windows__{column}") for name, column in _STORED.items()})


# "Failure rate moved noticeably" between the lifetime rate a service had at ?since= and its
# rate over the calls made since: by 5 points, or doubled (halved) while moving at least 1 point.
# Below these a row would light up for every stray failure of a busy service.
RATE_POINTS = 0.05
RATE_FACTOR = 2.0
RATE_FACTOR_MIN_POINTS = 0.01


def since_columns(since: datetime) -> dict:
    """What changed since `since`: the status, and the failure rate when it moved noticeably.

    The rate since is taken over at least DASHBOARD_RATE_MIN_CALLS calls, as "failing now"
    ranks it (1 failure in 1 call is noise). The rate before is the lifetime rate of the
    baseline sample (for a service first seen after `since`, its first), 0 before any call.
    """
    changed = StatusChange.objects.filter(service=OuterRef("pk"), at__gte=since)
    return {
        "since_status": Exists(changed),
        "since_base_calls": baseline("invocation_times", since),
        "since_base_failures": baseline("failed_times", since),
        "since_calls": increase("invocation_times", "since_base_calls"),
        "since_failures": increase("failed_times", "since_base_failures"),
        "since_rate_before": Case(
            When(since_base_calls__gt=0, then=ratio("since_base_failures", "since_base_calls")),
            When(since_base_calls=0, then=Value(0.0)),
            default=None,
            output_field=FloatField(),
        ),
        "since_rate": Case(
            When(
                since_calls__gte=settings.DASHBOARD_RATE_MIN_CALLS,
                since_failures__isnull=False,
                then=ratio("since_failures", "since_calls"),
            ),
            default=None,
            output_field=FloatField(),
        ),
        "since_failing": _flag(_above("since_rate", F("since_rate_before"))),
        "since_recovered": _flag(_above("since_rate_before", F("since_rate"))),
    }


def _above(high: str, low: F) -> Q:
    """The rate `high` noticeably above the rate `low` (see RATE_POINTS)."""
    return Q(**{f"{high}__gte": low + RATE_POINTS}) | (
        Q(**{f"{high}__gte": low * RATE_FACTOR})
        & Q(**{f"{high}__gte": low + RATE_FACTOR_MIN_POINTS})
    )


def _flag(condition: Q) -> Case:
    """True where `condition` holds; False where it does not or a rate is unknown (NULL)."""
    return Case(
        When(condition, then=Value(True)), default=Value(False), output_field=BooleanField()
    )


# The windowed and since columns a page shows (the others are steps towards them).
WINDOW_FIELDS = ("w_calls", "w_failures", "w_rate")
SINCE_FIELDS = (
    "since_status",
    "since_failing",
    "since_recovered",
    "since_rate_before",
    "since_rate",
)
