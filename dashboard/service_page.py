"""The page of one service: its latest snapshot, history charts and status changes.

A constant number of queries whatever the history holds: the service (with its source), the
samples in the range, the last sample before it (the counters' baseline), the status changes in
the range; plus the header's own.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields
from datetime import datetime
from urllib.parse import urlencode

from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from dashboard import charts
from dashboard.modelarts import ServiceRecord
from dashboard.models import Service, ServiceSample, StatusChange
from dashboard.statuses import style_for
from dashboard.views import _freshness

CHANGES_LISTED = 200
# A timeline needs every change in its range; past this many it draws the newest only.
CHANGES_DRAWN = 2000
# The same id in several sources (regions, projects): the others are offered as links.
SAME_ID_SHOWN = 20
# Every field the API documents, in its order (ServiceRecord keeps it), then our own.
API_FIELDS = [f.name for f in fields(ServiceRecord) if f.name != "raw"]
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
    matches = _matches(service_id, source_name)
    if not matches:
        where = f" in source {source_name!r}" if source_name else ""
        message = f"No service with id {service_id!r}{where} has been seen."
        return _problem(request, 404, message, service_id, source_name)
    service, same_id = matches[0], matches[1:]

    window = charts.window_for(range_, timezone.now())
    baseline, points = _counters(service, window)
    changes, truncated = _changes(service, window)
    intervals = charts.per_interval(
        points, window, baseline=baseline, known_until=_known_until(service)
    )
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
        "changes": [_change_row(change) for change in changes[:CHANGES_LISTED]],
        "changes_count": len(changes),
        "changes_truncated": truncated,
        "changes_listed": CHANGES_LISTED,
        "fields": [_field(field, getattr(service, field)) for field in API_FIELDS],
        "derived_fields": [_field(field, getattr(service, field)) for field in DERIVED_FIELDS],
        "raw_json": _json_text(service.raw, indent=2),
        "sources": [_freshness(service.source)],
        "section": "services",
    }
    return render(request, "dashboard/service.html", context)


def _matches(service_id: str, source_name: str) -> list[Service]:
    """The service, and others with the same id in other sources: listed ones first."""
    services = Service.objects.filter(service_id=service_id).select_related("source")
    if source_name:
        services = services.filter(source__name=source_name)
    ordered = services.order_by(F("gone_at").asc(nulls_first=True), "source__name")
    return list(ordered[: SAME_ID_SHOWN + 1])


def _counters(
    service: Service, window: charts.Window
) -> tuple[charts.CounterPoint | None, list[charts.CounterPoint]]:
    # Both read the sample_service_at index; tuples, not model instances: a busy service has
    # a sample per poll, thousands in a week.
    columns = ("at", "invocation_times", "failed_times")
    samples = ServiceSample.objects.filter(service=service)
    before = samples.filter(at__lt=window.start).order_by("-at", "-id").values_list(*columns)
    inside = samples.filter(at__gte=window.start).order_by("at", "id").values_list(*columns)
    baseline = next(iter(before[:1]), None)
    points = [charts.CounterPoint(*row) for row in inside]
    return (charts.CounterPoint(*baseline) if baseline else None), points


def _changes(service: Service, window: charts.Window) -> tuple[list[StatusChange], bool]:
    """The status changes in the range, newest first, and whether some were left out."""
    rows = list(
        StatusChange.objects.filter(service=service, at__gte=window.start).order_by("-at", "-id")[
            : CHANGES_DRAWN + 1
        ]
    )
    return rows[:CHANGES_DRAWN], len(rows) > CHANGES_DRAWN


def _known_until(service: Service) -> datetime | None:
    """Counters are known up to the last successful poll, and not past the service's end."""
    moments = [m for m in (service.source.last_success_at, service.gone_at) if m is not None]
    return min(moments, default=None)


def _range_links(current: charts.Range, source_name: str) -> list[dict]:
    links = []
    for key in charts.RANGES:
        query = {"range": key, **({"source": source_name} if source_name else {})}
        links.append({"key": key, "url": f"?{urlencode(query)}", "current": key == current.key})
    return links


def _change_row(change: StatusChange) -> dict:
    return {
        "change": change,
        "from_style": style_for(change.from_status) if change.from_status else None,
        "to_style": style_for(change.to_status),
    }


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
