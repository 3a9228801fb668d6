"""Alerts, silences and deliveries as /alerts/, /api/alerts and the header read them.

Every function costs one query however many rows there are; the lists are bounded, since a
fleet-wide outage can open thousands of alerts and the page must still answer.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from dashboard.models import Alert, Notification, Silence

FIRING_LIMIT = 500
RESOLVED_LIMIT = 50
DELIVERIES_LIMIT = 50
SILENCES_LIMIT = 200
# Pages never show a channel's secrets, so they are not even read.
CHANNEL_SECRETS = ("channel__url", "channel__secret", "channel__ak", "channel__sk")


def _alerts() -> QuerySet[Alert]:
    return Alert.objects.select_related("rule", "source", "service")


def firing(limit: int = FIRING_LIMIT) -> list[Alert]:
    """Open alerts (silenced ones too), newest first."""
    # The alert_open_service partial index holds exactly these rows.
    return list(_alerts().filter(resolved_at=None).order_by("-started_at", "-id")[:limit])


def firing_total() -> int:
    """How many alerts are open, silenced ones included (the page says when it shows fewer)."""
    return Alert.objects.filter(resolved_at=None).count()


def firing_count() -> int:
    """Open alerts that are not silenced: the header's number."""
    return Alert.objects.filter(resolved_at=None, silenced=False).count()


def resolved(limit: int = RESOLVED_LIMIT) -> list[Alert]:
    """The latest resolved alerts, most recently resolved first."""
    # Read through the alert_resolved_recent index.
    recent = _alerts().filter(resolved_at__isnull=False).order_by("-resolved_at", "-id")
    return list(recent[:limit])


def deliveries(limit: int = DELIVERIES_LIMIT) -> list[Notification]:
    """The newest outbox messages with their channel; payloads (up to hundreds of alerts
    each) and channel secrets are left unread."""
    rows = Notification.objects.select_related("channel").defer("payload", *CHANNEL_SECRETS)
    return list(rows.order_by("-created_at", "-id")[:limit])


def silences(now: datetime | None = None, limit: int = SILENCES_LIMIT) -> list[Silence]:
    """Active and upcoming silences, those ending first on top."""
    now = now or timezone.now()
    return list(Silence.objects.filter(ends_at__gt=now).order_by("ends_at", "id")[:limit])


def matching_silence(alert: Alert, active: list[Silence], now: datetime) -> Silence | None:
    """The active silence an alert falls under now, if any. The alert's own flag is as of the
    last evaluation; this also covers a silence made since (the next poll will agree)."""
    for silence in active:
        if silence.starts_at <= now < silence.ends_at and silence.matches(
            alert.labels, alert.rule.name
        ):
            return silence
    return None
