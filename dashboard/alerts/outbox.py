"""Sending the outbox: each pending message claimed by one poller, delivered, retried with
back-off while its receiver fails, within each receiver's rate limit.

A message is claimed with a lease before it is sent, so several pollers never send it twice at
once, and a poller killed mid-delivery leaves a claim that expires: a restarted (or another)
poller sends it then. The receiver gets the same message id every time (webhook-id), so the
one case where a message can arrive twice (sent, then the poller died before it noted so) is
one it can recognise.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta

from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from dashboard.alerts.channels import (
    RATE_LIMITS,
    AlertLine,
    ChannelConfig,
    Delivery,
    deliver,
)
from dashboard.alerts.channels import Notification as Message
from dashboard.models import AlertChannel, Notification

log = logging.getLogger(__name__)
SENDER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
DELIVERY_TIMEOUT = 10  # seconds a receiver may take to answer
# Longer than a delivery can take: only a dead sender's claim runs out.
LEASE = timedelta(seconds=3 * DELIVERY_TIMEOUT + 30)
# Retries: 15 s, 30 s, 1 min, … up to an hour apart; given up after MAX_ATTEMPTS.
FIRST_RETRY = timedelta(seconds=15)
LONGEST_WAIT = timedelta(hours=1)
MAX_ATTEMPTS = 12
BATCH = 20
TICK_SECONDS = 1.0


def channel_config(channel: AlertChannel) -> ChannelConfig:
    return ChannelConfig(
        name=channel.name,
        kind=channel.kind,
        url=channel.url,
        secret=channel.secret,
        to=tuple(channel.to),
        project_id=channel.project_id,
        topic_urn=channel.topic_urn,
        ak=channel.ak,
        sk=channel.sk,
    )


def message_of(row: Notification) -> Message:
    payload = row.payload
    lines = tuple(
        AlertLine(
            state=item["state"],
            labels=item["labels"],
            annotations=item["annotations"],
            starts_at=datetime.fromisoformat(item["starts_at"]),
            ends_at=datetime.fromisoformat(item["ends_at"]) if item["ends_at"] else None,
            url=item["url"],
            fingerprint=item["fingerprint"],
        )
        for item in payload["alerts"]
    )
    return Message(
        rule=payload["rule"],
        alerts=lines,
        external_url=payload.get("external_url", ""),
        message_id=row.message_id,
    )


def send_due(now: datetime | None = None, *, limit: int = BATCH) -> int:
    """Send the messages due now (up to `limit`); how many were attempted."""
    now = now or timezone.now()
    attempted = 0
    for pk in _due(now, limit):
        token = f"{SENDER_ID}:{uuid.uuid4().hex[:8]}"
        if not _claim(pk, token, now):
            continue  # another sender took it
        row = Notification.objects.select_related("channel").get(pk=pk)
        wait = _rate_limited(row, now)
        if wait is not None:
            _release(row, token, next_attempt_at=wait)
            continue
        attempted += 1
        _record(row, token, _deliver(row))
    return attempted


def _due(now: datetime, limit: int) -> list[int]:
    due = Notification.objects.filter(state=Notification.State.PENDING, next_attempt_at__lte=now)
    free = due.filter(Q(claim_expires_at=None) | Q(claim_expires_at__lt=now))
    return list(free.order_by("next_attempt_at", "id").values_list("pk", flat=True)[:limit])


def _claim(pk: int, token: str, now: datetime) -> bool:
    """An atomic conditional UPDATE: of several senders, exactly one wins the message."""
    free = Notification.objects.filter(pk=pk, state=Notification.State.PENDING).filter(
        Q(claim_expires_at=None) | Q(claim_expires_at__lt=now)
    )
    return bool(free.update(claimed_by=token, claim_expires_at=now + LEASE))


def _release(row: Notification, token: str, **fields: object) -> None:
    mine = Notification.objects.filter(pk=row.pk, claimed_by=token)
    mine.update(claimed_by="", claim_expires_at=None, **fields)


def _rate_limited(row: Notification, now: datetime) -> datetime | None:
    """When the receiver's rate limit lets this message go, if not now."""
    limit = RATE_LIMITS.get(row.channel.kind)
    if limit is None:
        return None
    count, seconds = limit
    since = now - timedelta(seconds=seconds)
    recent = Notification.objects.filter(channel=row.channel, sent_at__gt=since)
    times = list(recent.order_by("-sent_at").values_list("sent_at", flat=True)[:count])
    if len(times) < count:
        return None
    return times[-1] + timedelta(seconds=seconds)


def _deliver(row: Notification) -> Delivery:
    try:
        return deliver(channel_config(row.channel), message_of(row), timeout=DELIVERY_TIMEOUT)
    except Exception as exc:
        # A message the code cannot send (a bug, a payload from an older release) must not
        # stop the others: it is retried, then given up, and the log says why.
        log.exception("message %s could not be sent", row.message_id)
        return Delivery(False, None, "", None, f"internal error: {type(exc).__name__}")


def _record(row: Notification, token: str, delivery: Delivery) -> None:
    now = timezone.now()
    attempts = row.attempts + 1
    fields: dict[str, object] = {
        "attempts": attempts,
        "last_status_code": delivery.status_code,
        "last_answer": delivery.answer,
        "last_error": delivery.error,
    }
    if delivery.ok:
        fields.update(state=Notification.State.SENT, sent_at=now)
    elif attempts >= MAX_ATTEMPTS:
        fields["state"] = Notification.State.FAILED
        log.warning("gave up on message %s to %s: %s", row.message_id, row.channel, delivery.error)
    else:
        wait = backoff(attempts)
        if delivery.retry_after:
            wait = max(wait, timedelta(seconds=delivery.retry_after))
        fields["next_attempt_at"] = now + wait
        log.info("message to %s failed (%s); retry in %s", row.channel, delivery.error, wait)
    _release(row, token, **fields)


def backoff(attempts: int) -> timedelta:
    """The wait after the given number of failed attempts: doubling from FIRST_RETRY."""
    return min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_WAIT)


def send_pending(*, deadline: float) -> int:
    """Send what is due now, retries included, until nothing is or the monotonic deadline
    passes; how many messages were attempted. (`poll_services --once` ends with it.)"""
    attempted = 0
    while time.monotonic() < deadline:
        batch = send_due()
        attempted += batch
        pending = Notification.objects.filter(state=Notification.State.PENDING)
        if not pending.exists():
            break
        if not batch:
            time.sleep(TICK_SECONDS)  # a retry or a rate limit is due shortly
    return attempted


def send_forever(stop: threading.Event) -> None:
    """The dispatcher thread beside the poller: a slow receiver delays messages, never polls."""
    while not stop.is_set():
        try:
            close_old_connections()
            if send_due():
                continue  # more may be due: no sleep between batches
        except Exception:
            # The outermost loop of the thread: a database hiccup must not end delivery.
            log.exception("sending alerts failed; retrying")
        stop.wait(TICK_SECONDS)
    close_old_connections()
