"""The fleet's status changes, filtered: the events feed and its JSON."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from dashboard.models import StatusChange

# How the feed names a service's first sighting (a change with no previous status).
APPEARED = "appeared"


def status_changes(
    *,
    source: str = "",
    from_status: str = "",
    to_status: str = "",
    service: str = "",
    after: datetime | None = None,
    before: datetime | None = None,
) -> QuerySet[StatusChange]:
    """The changes matching every given filter, newest first, with their service and source."""
    changes = StatusChange.objects.all()
    if source:
        changes = changes.filter(source__name=source)
    if from_status:
        changes = changes.filter(from_status="" if from_status == APPEARED else from_status)
    if to_status:
        changes = changes.filter(to_status=to_status)
    if service:
        changes = changes.filter(
            Q(service__service_id=service) | Q(service__service_name__icontains=service)
        )
    if after:
        changes = changes.filter(at__gte=after)
    if before:
        changes = changes.filter(at__lt=before)
    # change_recent serves the newest-first order; select_related keeps it one query per page.
    return changes.select_related("service", "source").order_by("-at", "-id")
