"""The page of one service: its latest snapshot, history charts and status changes.

A constant number of queries whatever the history holds (see queries.history); plus the
header's own.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from dashboard.models import Service
from dashboard.queries.freshness import freshness
from dashboard.queries.history import (
    changes_since,
    counters_since,
    known_until,
    services_with_id,
)
from dashboard.statuses import style_for
from dashboard.web import charts
from dashboard.web.events import change_row

CHANGES_LISTED = 200
# Every field the API documents, in its order (the model keeps it), then our own.
_NAMES = [f.name for f in Service._meta.concrete_fields]
API_FIELDS = _NAMES[_NAMES.index("service_id") : _NAMES.index("raw")]
DERIVED_FIELDS = [
    "failure_rate",
    "calls_delta",
    "failures_delta",
    "status_changed_at",
    "first_seen_at",
    "gone_at",
]
# Shown as \u escapes in the raw JSON: bidi overrides and zero-width characters would make the
# text read differently from what the API sent.
INVISIBLE = re.compile("[\u0080-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


@require_GET
def service_detail(request: HttpRequest, service_id: str) -> HttpResponse:
    range_key = request.GET.get("range") or charts.DEFAULT_RANGE
    source_name = request.GET.get("source", "")
    range_ = charts.RANGES.get(range_key)
    if range_ is None:
        choices = ", ".join(charts.RANGES)
        message = f"range must be one of {choices}, not {range_key[:40]!r}."
        return _problem(request, 400, message, service_id, source_name)
    matches = services_with_id(service_id, source_name)
    if not matches:
        where = f" in source {source_name!r}" if source_name else ""
        message = f"No service with id {service_id!r}{where} has been seen."
        return _problem(request, 404, message, service_id, source_name)
    service, same_id = matches[0], matches[1:]

    window = charts.window_for(range_, timezone.now())
    changes, truncated = changes_since(service, window.start)
    intervals = chart_intervals(service, window)
    segments = charts.status_segments(
        changes[::-1],
        window,
        current_status=service.status,
        first_seen_at=service.first_seen_at,
        gone_at=service.gone_at,
        earlier_unknown=truncated,
    )
    shown = service.service_name or service.service_id
    context = {
        "service": service,
        "style": style_for(service.status),
        "same_id": same_id,
        "range": range_,
        "window": window,
        "ranges": _range_links(range_, source_name),
        "calls_svg": charts.calls_chart(
            intervals, window, range_, label=f"Calls and failures of {shown}"
        ),
        "rate_svg": charts.failure_rate_chart(
            intervals, window, range_, label=f"Failure rate of {shown}"
        ),
        "timeline_svg": charts.timeline_chart(
            segments, window, range_, label=f"Status timeline of {shown}"
        ),
        "intervals": intervals,
        "changes": [change_row(change) for change in changes[:CHANGES_LISTED]],
        "changes_count": len(changes),
        "changes_truncated": truncated,
        "changes_listed": CHANGES_LISTED,
        "fields": [_field(field, getattr(service, field)) for field in API_FIELDS],
        "derived_fields": [_field(field, getattr(service, field)) for field in DERIVED_FIELDS],
        "raw_json": _json_text(service.raw, indent=2),
        "sources": [freshness(service.source)],
        "section": "services",
    }
    return render(request, "dashboard/service.html", context)


def chart_intervals(service: Service, window: charts.Window) -> list[charts.Interval]:
    """The calls and failures per interval of the window, from the service's samples."""
    baseline, points = counters_since(service, window.start)
    return charts.per_interval(
        [charts.CounterPoint(*point) for point in points],
        window,
        baseline=charts.CounterPoint(*baseline) if baseline else None,
        known_until=known_until(service),
    )


def _range_links(current: charts.Range, source_name: str) -> list[dict]:
    links = []
    for key in charts.RANGES:
        query = {"range": key, **({"source": source_name} if source_name else {})}
        links.append({"key": key, "url": f"?{urlencode(query)}", "current": key == current.key})
    return links


def _field(name: str, value: object) -> dict:
    """A field of the snapshot and how to show it."""
    if value is None or value == "":
        kind = "none"
    elif isinstance(value, datetime):
        kind = "time"
    elif isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, int):
        kind = "count"
    elif isinstance(value, float):
        kind = "rate"
    elif isinstance(value, list | dict):
        kind, value = "json", _json_text(value)
    else:
        kind = "text"
    return {"name": name, "kind": kind, "value": value}


def _json_text(value: object, indent: int | None = None) -> str:
    text = json.dumps(value, indent=indent, ensure_ascii=False, default=str)
    return INVISIBLE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _problem(
    request: HttpRequest, status: int, message: str, service_id: str, source_name: str
) -> HttpResponse:
    context = {
        "problem": message,
        "status_code": status,
        "service_id": service_id,
        "default_url": f"?{urlencode({'source': source_name})}" if source_name else "?",
        "section": "services",
    }
    return render(request, "dashboard/service.html", context, status=status)
