"""Who polls a source now: a claim (a lease) in the database, so pollers on several machines
never poll one source twice at once."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from dashboard.models import (
    Source,
)

# One identity per process, so a claim names who holds it.
POLLER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class SourceBusy(Exception):
    """Another poller holds this source's claim, or it was polled a moment ago."""


def poll_budget(source: Source) -> float:
    """Seconds one poll of the source may spend fetching: always less than its interval."""
    return max(5.0, 0.8 * source.interval_seconds)


def claim(source: Source, *, only_if_due: bool = False, requested: bool = False) -> str | None:
    """Take the source for one poll; the claim's token, or None if that is not possible now.

    A conditional UPDATE is atomic on every database, so two pollers can never both win, and
    only one takes a page's request for a poll (requested=True: only while it is pending).
    Any claim answers a pending request: the poll it starts is the one asked for. The lease
    outlives the longest a live poll can take (its budget plus a request in flight), so only a
    crashed poller's claim expires.
    """
    now = timezone.now()
    token = f"{POLLER_ID}:{uuid.uuid4().hex[:8]}"
    lease = timedelta(seconds=poll_budget(source) + 2 * settings.MODELARTS_TIMEOUT + 60)
    free = Source.objects.filter(pk=source.pk).filter(
        Q(claim_expires_at__isnull=True) | Q(claim_expires_at__lt=now)
    )
    if requested:
        free = free.filter(poll_requested_at__isnull=False)
    elif only_if_due:
        # Checked in the same UPDATE, so a poll that just finished is not repeated.
        since = now - timedelta(seconds=source.interval_seconds)
        free = free.filter(Q(last_poll_at__isnull=True) | Q(last_poll_at__lte=since))
    won = free.update(claimed_by=token, claim_expires_at=now + lease, poll_requested_at=None)
    return token if won else None


def release(source: Source, token: str) -> None:
    Source.objects.filter(pk=source.pk, claimed_by=token).update(
        claimed_by="", claim_expires_at=None
    )
    # The caller's object too: saved later, it must not write the old claim back.
    if source.claimed_by == token:
        source.claimed_by, source.claim_expires_at = "", None


def why_busy(source: Source) -> str:
    source.refresh_from_db()
    if source.claim_expires_at and source.claim_expires_at > timezone.now():
        return f"{source.name}: a poll is already running"
    return f"{source.name}: polled {_seconds_ago(source.last_poll_at)} s ago"


def _seconds_ago(moment: datetime | None) -> int:
    return int((timezone.now() - moment).total_seconds()) if moment else 0
