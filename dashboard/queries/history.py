"""One service's history: the same id across sources, its counter samples and status changes.

A constant number of queries whatever the history holds.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import F

from dashboard.models import Service, ServiceSample, StatusChange

# The same id in several sources (regions, projects): the others are offered as links.
SAME_ID_SHOWN = 20
# A timeline needs every change in its range; past this many it draws the newest only.
CHANGES_DRAWN = 2000
# A counter sample: (at, invocation_times, failed_times).
Counters = tuple[datetime, int | None, int | None]


def services_with_id(service_id: str, source_name: str = "") -> list[Service]:
    """The service, and others with the same id in other sources: listed ones first."""
    services = Service.objects.filter(service_id=service_id).select_related("source")
    if source_name:
        services = services.filter(source__name=source_name)
    ordered = services.order_by(F("gone_at").asc(nulls_first=True), "source__name")
    return list(ordered[: SAME_ID_SHOWN + 1])


def counters_since(service: Service, start: datetime) -> tuple[Counters | None, list[Counters]]:
    """The last sample before `start` (the counters' baseline) and every sample after it."""
    # Both read the sample_service_at index; tuples, not model instances: a busy service has
    # a sample per poll, thousands in a week.
    columns = ("at", "invocation_times", "failed_times")
    samples = ServiceSample.objects.filter(service=service)
    before = samples.filter(at__lt=start).order_by("-at", "-id").values_list(*columns)
    inside = samples.filter(at__gte=start).order_by("at", "id").values_list(*columns)
    return next(iter(before[:1]), None), list(inside)


def changes_since(service: Service, start: datetime) -> tuple[list[StatusChange], bool]:
    """The status changes since `start`, newest first, and whether some were left out."""
    changes = StatusChange.objects.filter(service=service, at__gte=start)
    rows = list(changes.order_by("-at", "-id")[: CHANGES_DRAWN + 1])
    return rows[:CHANGES_DRAWN], len(rows) > CHANGES_DRAWN


def known_until(service: Service) -> datetime | None:
    """Counters are known up to the last successful poll, and not past the service's end."""
    moments = [m for m in (service.source.last_success_at, service.gone_at) if m is not None]
    return min(moments, default=None)
