"""Counters over a window of time, and what changed since a moment: the table's ?window= and
?since= columns.

A window's numbers are the ones the poller keeps for every service (models.ServiceWindow, see
ingest.windows): a view joins them instead of working out every service's window. They end at
the service's source's last successful poll.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import BooleanField, Case, Exists, F, OuterRef, QuerySet, Value, When

from dashboard.baselines import WINDOWS, baseline
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


def since_columns(since: datetime) -> dict:
    changed = StatusChange.objects.filter(service=OuterRef("pk"), at__gte=since)
    return {
        "since_status": Exists(changed),
        "since_base_failures": baseline("failed_times", since),
        "since_failing": Case(
            When(failed_times__gt=F("since_base_failures"), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
    }


# The windowed and since columns a page shows (the others are steps towards them).
WINDOW_FIELDS = ("w_calls", "w_failures", "w_rate")
SINCE_FIELDS = ("since_status", "since_failing")
