"""What ModelArts says of one service (its stored detail), read for the service's page: the
detail itself, its events and deployments with their times parsed, the console's region, and
one timeline merging our status changes with ModelArts' own events. No HTTP, no HTML.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.dateparse import parse_datetime

from dashboard.models import Service, ServiceDetail, Source, StatusChange
from dashboard.queries.freshness import POLL_PICKUP
from dashboard.statuses import ALERTING

# The API's own hosts name their region: modelarts.cn-north-4.myhuaweicloud.com (or .cn).
REGION_HOST = re.compile(r"^modelarts\.([a-z0-9-]+)\.myhuaweicloud\.(?:com|cn)$")
REGION = re.compile(r"^[a-z0-9-]+$")


def detail_of(service: Service) -> ServiceDetail | None:
    """The service's stored detail; None before any page or poller asked for it."""
    return ServiceDetail.objects.filter(service=service).first()


def fetch_due(detail: ServiceDetail | None, now: datetime) -> bool:
    """Whether a page showing the detail should ask for a fresh fetch: none asked for yet and
    the last try older than DASHBOARD_DETAIL_MAX_AGE.

    The last try, not the last success: after a failed try, asking again at once would only
    repeat the failure every few seconds for as long as the page stays open.
    """
    if detail is None:
        return True
    if detail.requested_at is not None:
        return False
    last_try = detail.attempted_at or detail.fetched_at
    max_age = timedelta(seconds=settings.DASHBOARD_DETAIL_MAX_AGE)
    return last_try is None or now - last_try > max_age


def unanswered(detail: ServiceDetail | None, now: datetime) -> bool:
    """A fetch was asked for long enough ago that a running poller would have taken it."""
    requested = detail.requested_at if detail else None
    return requested is not None and now - requested > POLL_PICKUP


def moment(value: object) -> datetime | None:
    """An ISO-8601 time as the poller stores it; None when missing or unreadable (a time the
    API garbled must not break the page). A time without a zone is taken as UTC."""
    if not isinstance(value, str):
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def events_of(detail: ServiceDetail | None) -> list[dict]:
    """ModelArts' events, newest first (undated ones last): type, info, at, abnormal."""
    if detail is None or not isinstance(detail.events, list):
        return []
    events = [
        {
            "type": str(event.get("type") or ""),
            "info": str(event.get("info") or ""),
            "at": moment(event.get("at")),
            "abnormal": str(event.get("type") or "").lower() == "abnormal",
        }
        for event in detail.events
        if isinstance(event, dict)
    ]
    return _newest_first(events)


def abnormal_events(events: list[dict], limit: int) -> list[dict]:
    return [event for event in events if event["abnormal"]][:limit]


def update_logs_of(detail: ServiceDetail | None) -> list[dict]:
    """The deployment history, newest first, with times parsed; models as stored."""
    if detail is None or not isinstance(detail.update_logs, list):
        return []
    logs = [
        {
            "at": moment(entry.get("at")),
            "result": str(entry.get("result") or ""),
            "models": [m for m in entry.get("models") or [] if isinstance(m, dict)],
            "success": entry.get("success"),
            "failed": entry.get("failed"),
        }
        for entry in detail.update_logs
        if isinstance(entry, dict)
    ]
    return _newest_first(logs)


def region_of(source: Source) -> str:
    """The source's region for the console: its IAM project name, else its endpoint's host;
    empty when neither says."""
    # A sub-project's IAM name is "{region}_{name}": the console wants the region alone.
    named = source.region.split("_", 1)[0].strip().lower()
    if REGION.match(named):
        return named
    host = (urlsplit(source.endpoint).hostname or "").lower()
    found = REGION_HOST.match(host)
    return found.group(1) if found else ""


def timeline(
    changes: Iterable[StatusChange], events: Iterable[dict], since: datetime | None = None
) -> list[dict]:
    """Our status changes and ModelArts' events, newest first, as plain dicts: kind ("status"
    or "event"), at, its texts and whether it is abnormal. Events before `since` are left out
    (the list shows a range); undated ones come last, where no time can place them."""
    rows = [
        {
            "kind": "status",
            "at": change.at,
            "change": change,
            "from_status": change.from_status,
            "to_status": change.to_status,
            "abnormal": change.to_status in ALERTING,
        }
        for change in changes
    ]
    rows += [
        {
            "kind": "event",
            "at": event["at"],
            "type": event["type"],
            "info": event["info"],
            "abnormal": event["abnormal"],
        }
        for event in events
        if since is None or event["at"] is None or event["at"] >= since
    ]
    return _newest_first(rows)


def _newest_first(rows: list[dict]) -> list[dict]:
    # sorted() stays stable with reverse=True: rows at the same moment keep their order.
    dated = sorted(
        (row for row in rows if row["at"] is not None), key=lambda row: row["at"], reverse=True
    )
    return [*dated, *(row for row in rows if row["at"] is None)]
