"""The outbox over real HTTP: delivered once, retried with back-off, nothing lost."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone
from receivers import FakeReceiver, Reply, closed_url

from dashboard.alerts import outbox
from dashboard.alerts.engine import enqueue
from dashboard.models import AlertChannel, Notification


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver() as running:
        yield running


def bodies(receiver: FakeReceiver) -> list[dict]:
    return [seen.json() for seen in receiver.seen]


def line(name: str = "bad") -> dict:
    return {
        "state": "firing",
        "labels": {"alertname": "failing", "service_name": name, "service_id": "s1",
                   "status": "failed", "source": "sim", "owner": "o"},
        "annotations": {"summary": f"{name} is failed"},
        "starts_at": timezone.now().isoformat(),
        "ends_at": None,
        "url": "",
        "fingerprint": "0123456789abcdef",
    }  # fmt: skip


def webhook(url: str, **fields) -> AlertChannel:
    return AlertChannel.objects.create(name="hook", kind="webhook", url=url, **fields)


def test_it_delivers_a_queued_message_once(db, receiver):
    message = enqueue(webhook(receiver.url), "failing", [line()], timezone.now())
    assert outbox.send_due() == 1
    assert outbox.send_due() == 0
    message.refresh_from_db()
    assert (message.state, message.attempts, message.last_status_code) == ("sent", 1, 200)
    assert len(receiver.seen) == 1
    assert bodies(receiver)[0]["alerts"][0]["labels"]["service_name"] == "bad"


def test_it_retries_a_failing_receiver_with_the_same_message_id(db):
    with FakeReceiver(Reply(500), Reply(503)) as receiver:
        message = enqueue(webhook(receiver.url), "failing", [line()], timezone.now())
        outbox.send_due()
        message.refresh_from_db()
        assert (message.state, message.attempts) == ("pending", 1)
        # The first retry comes within 30 s.
        wait = message.next_attempt_at - timezone.now()
        assert timedelta(seconds=10) < wait <= timedelta(seconds=30)
        assert outbox.send_due() == 0  # not due yet
        outbox.send_due(message.next_attempt_at + timedelta(seconds=1))
        message.refresh_from_db()
        assert message.attempts == 2
        assert message.next_attempt_at - timezone.now() > timedelta(seconds=25)
        outbox.send_due(message.next_attempt_at + timedelta(seconds=1))
        message.refresh_from_db()
        assert (message.state, message.attempts) == ("sent", 3)
        ids = [seen.headers["webhook-id"] for seen in receiver.seen]
        assert len(ids) == 3 and len(set(ids)) == 1


def test_it_waits_as_long_as_a_throttled_receiver_asks(db):
    with FakeReceiver(Reply(429, headers={"Retry-After": "120"})) as receiver:
        message = enqueue(webhook(receiver.url), "failing", [line()], timezone.now())
        outbox.send_due()
        message.refresh_from_db()
        assert message.next_attempt_at - timezone.now() > timedelta(seconds=100)


def test_it_gives_up_after_its_last_attempt(db, monkeypatch):
    monkeypatch.setattr(outbox, "MAX_ATTEMPTS", 2)
    with FakeReceiver(Reply(500), Reply(500)) as receiver:
        message = enqueue(webhook(receiver.url), "failing", [line()], timezone.now())
        outbox.send_due()
        outbox.send_due(timezone.now() + timedelta(minutes=5))
        message.refresh_from_db()
        assert (message.state, message.attempts, message.last_status_code) == ("failed", 2, 500)
        assert "500" in message.last_error


def test_a_down_receiver_is_retried_not_lost(db):
    message = enqueue(webhook(closed_url()), "failing", [line()], timezone.now())
    outbox.send_due()
    message.refresh_from_db()
    assert (message.state, message.attempts, message.last_status_code) == ("pending", 1, None)
    assert message.last_error


def test_a_message_claimed_by_a_killed_sender_is_sent_once_its_claim_runs_out(db, receiver):
    message = enqueue(webhook(receiver.url), "failing", [line()], timezone.now())
    # A sender claimed it and died before it could send.
    Notification.objects.filter(pk=message.pk).update(
        claimed_by="dead:1", claim_expires_at=timezone.now() + outbox.LEASE
    )
    assert outbox.send_due() == 0
    assert outbox.send_due(timezone.now() + outbox.LEASE + timedelta(seconds=1)) == 1
    message.refresh_from_db()
    assert message.state == "sent" and len(receiver.seen) == 1


def test_of_two_senders_only_one_claims_a_message(db, receiver):
    message = enqueue(webhook(receiver.url), "failing", [line()], timezone.now())
    now = timezone.now()
    # The claim is one conditional UPDATE: whoever runs it second finds it taken.
    assert outbox._claim(message.pk, "poller-a:1", now)
    assert not outbox._claim(message.pk, "poller-b:1", now)
    assert outbox.send_due() == 0
    assert receiver.seen == []


def test_it_keeps_to_a_receivers_rate_limit(db, receiver, monkeypatch):
    monkeypatch.setitem(outbox.RATE_LIMITS, "webhook", (3, 60))
    channel = webhook(receiver.url)
    for n in range(5):
        enqueue(channel, "failing", [line(f"svc-{n}")], timezone.now())
    outbox.send_due()
    assert len(receiver.seen) == 3
    waiting = Notification.objects.filter(state="pending")
    assert waiting.count() == 2
    assert all(m.next_attempt_at > timezone.now() + timedelta(seconds=50) for m in waiting)
