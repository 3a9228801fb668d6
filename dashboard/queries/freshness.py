"""How fresh each source's data is: what every page's header says about it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from dashboard.models import Source

# A requested poll that no poller has taken after this long: none is running.
POLL_PICKUP = timedelta(seconds=30)


@dataclass(frozen=True)
class Freshness:
    source: Source
    as_of: datetime | None
    age_seconds: int | None
    next_poll_at: datetime | None
    stale: bool
    failing: bool
    # A page asked for a poll that has not started yet; unanswered: for longer than a poller
    # would take to notice.
    poll_requested_at: datetime | None
    unanswered: bool


def freshness(source: Source, now: datetime | None = None) -> Freshness:
    now = now or timezone.now()
    requested = source.poll_requested_at
    return Freshness(
        source=source,
        as_of=source.last_success_at,
        age_seconds=seconds_between(source.last_success_at, now),
        next_poll_at=source.next_poll_at(),
        stale=source.is_stale(now),
        failing=source.failures_since_success > 0,
        poll_requested_at=requested,
        unanswered=requested is not None and now - requested > POLL_PICKUP,
    )


def seconds_between(earlier: datetime | None, later: datetime) -> int | None:
    return None if earlier is None else max(0, int((later - earlier).total_seconds()))


def health_problem(source: Source, now: datetime) -> str | None:
    """Why a source's data cannot be trusted now, in words; None while it is fresh."""
    if not source.is_stale(now):
        return None
    if source.last_success_at is None:
        reason = "never polled successfully"
    else:
        reason = f"last successful poll {seconds_between(source.last_success_at, now)} s ago"
    if source.last_error:
        reason += f"; last error: {source.last_error}"
    return f"{source.name}: {reason}"
