"""What /metrics exposes, read from the database on every scrape so every web worker answers
the same."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from dashboard.models import AlertRule, PollRun, Service, Source
from dashboard.queries.sources import visible

CHUNK_SIZE = 2000
# What is_stale() and the source families read: the GROUP BY stays narrow.
SOURCE_FIELDS = (
    "name",
    "interval_seconds",
    "last_poll_at",
    "last_success_at",
    "failures_since_success",
    "last_poll_complete",
)
# The columns of service_series(), in order.
SERIES_COLUMNS = (
    "source__name",
    "service_id",
    "service_name",
    "infer_type",
    "owner",
    "status",
    "invocation_times",
    "failed_times",
    "progress",
    "shared_count",
)


def source_health() -> QuerySet[Source]:
    """The enabled sources with their failed polls counted and their last poll's duration."""
    last_duration = PollRun.objects.filter(source=OuterRef("pk")).order_by("-started_at", "-id")
    return (
        Source.objects.filter(enabled=True)
        .only(*SOURCE_FIELDS)
        .annotate(
            poll_failures=Count("runs", filter=Q(runs__ok=False)),
            last_duration_ms=Subquery(last_duration.values("duration_ms")[:1]),
        )
    )


def service_series() -> Iterator[tuple]:
    """Every visible service as a tuple of SERIES_COLUMNS, in one query read in chunks."""
    services = visible(Service.objects.all())
    return services.values_list(*SERIES_COLUMNS).iterator(chunk_size=CHUNK_SIZE)


def firing_by_rule() -> list[tuple[str, int]]:
    """Each enabled rule and how many of its alerts fire now (silenced ones left out)."""
    firing = Q(alerts__resolved_at=None, alerts__silenced=False)
    rules = AlertRule.objects.filter(enabled=True).annotate(n=Count("alerts", filter=firing))
    return list(rules.order_by("name").values_list("name", "n"))
