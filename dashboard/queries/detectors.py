"""Detectors: services stuck deploying, idle while running, or flapping between statuses."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from dashboard.baselines import sample_at
from dashboard.models import ServiceSample, StatusChange

DETECTORS = ("stuck", "idle", "flapping")


def detector_columns(now: datetime) -> dict:
    stuck_since = now - timedelta(minutes=settings.DASHBOARD_STUCK_MINUTES)
    idle_since = now - timedelta(minutes=settings.DASHBOARD_IDLE_MINUTES)
    flap_since = now - timedelta(minutes=settings.DASHBOARD_FLAP_MINUTES)
    # Any sample: one is written whenever status, progress or a counter changes.
    last_sample = ServiceSample.objects.filter(service=OuterRef("pk")).order_by("-at", "-id")
    flaps = (
        StatusChange.objects.filter(service=OuterRef("pk"), at__gte=flap_since)
        .exclude(from_status="")  # a service appearing is not a change of status
        .order_by()
        .values("service")
        .annotate(n=Count("id"))
        .values("n")
    )
    return {
        "last_sample_at": Coalesce(Subquery(last_sample.values("at")[:1]), F("first_seen_at")),
        # The calls counter as it was when the idle time began: unchanged since → idle.
        "idle_base_calls": sample_at("invocation_times", idle_since),
        "flap_count": Coalesce(Subquery(flaps, output_field=IntegerField()), 0),
        "is_stuck": Case(
            # Status first: the subquery behind last_sample_at runs only for deployments.
            When(Q(status="deploying") & Q(last_sample_at__lt=stuck_since), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
        "is_idle": Case(
            When(
                Q(status="running")
                & Q(first_seen_at__lte=idle_since)
                & Q(invocation_times=F("idle_base_calls")),
                then=Value(True),
            ),
            default=Value(False),
            output_field=BooleanField(),
        ),
        "is_flapping": Case(
            When(flap_count__gte=settings.DASHBOARD_FLAP_CHANGES, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
    }


def detected(name: str, now: datetime) -> Q:
    """The services detector `name` flags (over detector_columns' aliases): its flag, behind a
    test an index answers that every flagged service passes, so that the flag's subqueries run
    for the few services that might be flagged, not for the whole fleet."""
    flagged = Q(**{f"is_{name}": True})
    if name == "stuck":
        return Q(status="deploying") & flagged
    if name == "idle":
        return Q(status="running") & flagged
    # Flapping takes DASHBOARD_FLAP_CHANGES (2 or more) changes, so at least one.
    flap_since = now - timedelta(minutes=settings.DASHBOARD_FLAP_MINUTES)
    changed = StatusChange.objects.filter(at__gte=flap_since).exclude(from_status="")
    return Q(pk__in=changed.values("service")) & flagged


# The flags a page shows, one per detector.
DETECTOR_FIELDS = tuple(f"is_{name}" for name in DETECTORS)
