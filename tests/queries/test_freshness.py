from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.models import Source
from dashboard.queries.freshness import freshness

POLLED = datetime(2026, 1, 1, tzinfo=UTC)


def source(interval: int = 30) -> Source:
    return Source(name="s", interval_seconds=interval, last_success_at=POLLED)


def test_one_missed_poll_is_late_not_stale_up_to_the_exact_boundary():
    boundary = POLLED + timedelta(seconds=2 * 30 + 5)
    assert not source().is_stale(boundary)
    assert source().is_stale(boundary + timedelta(microseconds=1))


def test_it_says_when_a_requested_poll_has_waited_too_long():
    waiting = source()
    waiting.poll_requested_at = POLLED
    assert not freshness(waiting, POLLED + timedelta(seconds=30)).unanswered
    assert freshness(waiting, POLLED + timedelta(seconds=31)).unanswered
    assert not freshness(source(), POLLED + timedelta(days=1)).unanswered
