"""The page of one service: why it fails (ModelArts' own account), its latest snapshot, history
charts, and a timeline of status changes and ModelArts' events.

A constant number of queries whatever the history holds (see queries.history); plus the
header's own. ModelArts is never called from here: the "Why" panel only asks the pollers for
a fresh fetch of the service's detail (/services/<id>/detail) and shows what they stored.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext, pgettext
from django.views.decorators.http import require_GET, require_POST

from dashboard.models import Service, ServiceDetail
from dashboard.queries.details import (
    abnormal_events,
    detail_of,
    events_of,
    fetch_due,
    region_of,
    timeline,
    unanswered,
    update_logs_of,
)
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
from dashboard.web.format import count
from dashboard.web.htmx import wants_partial
from dashboard.web.services import PENDING_REFRESH_SECONDS

log = logging.getLogger(__name__)
CHANGES_LISTED = 200
# The "Why" panel lists this many of ModelArts' latest abnormal events; the timeline has all.
ABNORMAL_SHOWN = 5
# A deployment's result and the badge tone it gets (anything else: unknown, never healthy).
RESULT_TONES = {"SUCCESS": "ok", "FAIL": "bad", "RUNNING": "info"}
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
    # Without an explicit ?range=, the range follows the service's history (default_range).
    range_key = request.GET.get("range") or charts.DEFAULT_RANGE
    source_name = request.GET.get("source", "")
    panel = request.GET.get("panel", "")
    range_ = charts.RANGES.get(range_key)
    if range_ is None:
        message = gettext("range must be one of %(choices)s, not %(value)s.") % {
            "choices": ", ".join(charts.RANGES),
            "value": repr(range_key[:40]),
        }
        return _problem(request, 400, message, service_id, source_name)
    if panel not in ("", "why"):
        message = gettext("panel must be why or left out, not %(value)s.") % {
            "value": repr(panel[:40])
        }
        return _problem(request, 400, message, service_id, source_name)
    matches = services_with_id(service_id, source_name)
    if not matches:
        return _not_seen(request, service_id, source_name)
    service, same_id = matches[0], matches[1:]
    now = timezone.now()
    detail = detail_of(service)
    events = events_of(detail)
    if panel and wants_partial(request):
        # The panel refreshing itself; a plain request for it gets the whole page.
        return _vary(_why_response(request, service, detail, events, now, may_ask=True))

    if not request.GET.get("range"):
        range_ = charts.default_range(service.first_seen_at, now)
    window = charts.window_for(range_, now)
    changes, truncated = changes_since(service, window.start)
    listed = changes[:CHANGES_LISTED]
    # Events only as far back as the listed changes go: older ones would sit in a gap.
    cut = truncated or len(changes) > len(listed)
    since = listed[-1].at if cut else window.start
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
            intervals,
            window,
            range_,
            label=gettext("Calls and failures of %(service)s") % {"service": shown},
        ),
        "rate_svg": charts.failure_rate_chart(
            intervals,
            window,
            range_,
            label=gettext("Failure rate of %(service)s") % {"service": shown},
        ),
        "timeline_svg": charts.timeline_chart(
            segments,
            window,
            range_,
            label=gettext("Status timeline of %(service)s") % {"service": shown},
        ),
        "intervals": intervals,
        "why": why_panel(service, detail, events, now, may_ask=True),
        "timeline": [_timeline_row(row) for row in timeline(listed, events, since)],
        "changes_count": len(changes),
        "changes_truncated": truncated,
        "changes_listed": CHANGES_LISTED,
        "fields": [_field(field, getattr(service, field)) for field in API_FIELDS],
        "derived_fields": [_field(field, getattr(service, field)) for field in DERIVED_FIELDS],
        "raw_json": _json_text(service.raw, indent=2),
        "sources": [freshness(service.source)],
        "refresh_seconds": settings.DASHBOARD_REFRESH_SECONDS,
        "section": "services",
    }
    return _vary(render(request, "dashboard/service.html", context))


@require_POST
def request_detail(request: HttpRequest, service_id: str) -> HttpResponse:
    """Ask the pollers for a fresh fetch of the service's detail: what the page does on load
    when its copy is older than DASHBOARD_DETAIL_MAX_AGE. The request never fetches itself.

    Any signed-in user may ask: a pending request is taken once however often anyone asks, so
    asking costs ModelArts at most one fetch per poller round. The answer (the panel, or the
    page without JavaScript) never asks again: no loops.
    """
    source_name = request.GET.get("source", "")
    matches = services_with_id(service_id, source_name)
    if not matches:
        return _not_seen(request, service_id, source_name)
    service = matches[0]
    note = ""
    if not service.source.enabled:
        note = gettext("The source %(source)s is disabled: no poller fetches its services.") % {
            "source": service.source.name
        }
    else:
        try:
            ServiceDetail.request(service)
        except DatabaseError:
            # The poller holds the write lock for a long moment, say; the page stays usable.
            log.warning("detail request for %s could not be saved", service_id, exc_info=True)
            note = gettext("The database is busy: try again in a moment.")
    if not request.htmx:
        return redirect(page_url(service_id, source_name))
    detail = detail_of(service)
    now = timezone.now()
    return _why_response(request, service, detail, events_of(detail), now, may_ask=False, note=note)


def page_url(service_id: str, source_name: str = "", **query: str) -> str:
    """The service's page (or, with panel="why", its panel), as every link writes it."""
    query = {**query, **({"source": source_name} if source_name else {})}
    path = f"/services/{quote(service_id, safe='')}/"
    return f"{path}?{urlencode(query)}" if query else path


def console_url(service: Service) -> str:
    """The service's page in the ModelArts console; empty when no region can be found."""
    region = region_of(service.source)
    if not region:
        return ""
    # replace(), not format(): a configured URL with other braces must not break the page.
    url = settings.DASHBOARD_CONSOLE_URL.replace("{region}", quote(region, safe=""))
    return url.replace("{service_id}", quote(service.service_id, safe=""))


def why_panel(
    service: Service,
    detail: ServiceDetail | None,
    events: list[dict],
    now: datetime,
    *,
    may_ask: bool,
    note: str = "",
) -> dict:
    """What the "Why" panel shows, and whether it asks for a fetch and how soon it refreshes."""
    source = service.source
    pending = bool(detail and detail.requested_at)
    # A request no poller takes is looked for at the normal pace, not every 2 s forever.
    waiting = pending and not unanswered(detail, now)
    source_query = {"source": source.name}
    return {
        "detail": detail,
        "state": _state(detail),
        "abnormal": abnormal_events(events, ABNORMAL_SHOWN),
        "models": [_model(config) for config in _dicts(detail and detail.model_configs)],
        "update_logs": [_update_log(entry) for entry in update_logs_of(detail)],
        "pending": pending,
        "unanswered": unanswered(detail, now),
        "source_name": source.name,
        "source_enabled": source.enabled,
        "ask": may_ask and source.enabled and fetch_due(detail, now),
        "ask_url": f"/services/{quote(service.service_id, safe='')}/detail?"
        + urlencode(source_query),
        "panel_url": page_url(service.service_id, source.name, panel="why"),
        "refresh_seconds": PENDING_REFRESH_SECONDS
        if waiting
        else settings.DASHBOARD_REFRESH_SECONDS,
        "console_url": console_url(service),
        "note": note,
    }


def _state(detail: ServiceDetail | None) -> str:
    if detail is None:
        return "asking"
    if detail.not_found:
        return "not_found"
    if detail.error_code:
        return "error"
    return "ok" if detail.fetched_at else "asking"


def _model(config: dict) -> dict:
    """A model as the page shows it: only the keys listed here reach the template, so an
    environment variable's value can never be shown, only its name."""
    names = config.get("env_names")
    if isinstance(names, dict):  # names are the keys of a mapping, never its values
        names = list(names)
    return {
        "name": _text(config.get("model_name")),
        "version": _text(config.get("model_version")),
        "flavor": _text(config.get("specification")),
        "instances": _number(config.get("instance_count")),
        "running": _number(config.get("running_instances")),
        "desired": _number(config.get("desired_instances")),
        "weight": _number(config.get("weight")),
        "status": _text(config.get("status")),
        "usage": _usage(config),
        "env_names": [name for name in names or [] if isinstance(name, str)],
    }


def _usage(config: dict) -> str:
    """What the model uses now, from the monitor API: "CPU 1.5 cores · 2,048 MB · GPU 0.8"."""
    parts = []
    for key, shown in (
        ("cpu_core_usage", lambda v: pgettext("usage", "CPU %(cores)s cores") % {"cores": v}),
        ("cpu_memory_usage", lambda v: pgettext("usage", "%(megabytes)s MB") % {"megabytes": v}),
        ("gpu_usage", lambda v: pgettext("usage", "GPU %(cards)s") % {"cards": v}),
        ("npu_usage", lambda v: pgettext("usage", "NPU %(cards)s") % {"cards": v}),
    ):
        value = _number(config.get(key))
        if value is not None:
            figure = count(round(value)) if key == "cpu_memory_usage" else f"{value:.3g}"
            parts.append(shown(figure))
    return " · ".join(parts)


def _update_log(entry: dict) -> dict:
    result = entry["result"]
    return {
        **entry,
        "tone": RESULT_TONES.get(result.upper(), "unknown"),
        "models": [_model(config) for config in entry["models"]],
        "success": _number(entry["success"]),
        "failed": _number(entry["failed"]),
    }


def _timeline_row(row: dict) -> dict:
    return {**row, **change_row(row["change"])} if row["kind"] == "status" else row


def _dicts(value: object) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _number(value: object) -> int | float | None:
    # JSON from the API: a count sent as text (or anything odd) must not break the page.
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            return int(str(value))
        except ValueError:
            return None
    return value


def _why_response(
    request: HttpRequest,
    service: Service,
    detail: ServiceDetail | None,
    events: list[dict],
    now: datetime,
    *,
    may_ask: bool,
    note: str = "",
) -> HttpResponse:
    context = {"why": why_panel(service, detail, events, now, may_ask=may_ask, note=note)}
    return render(request, "dashboard/_service_why.html", context)


def _vary(response: HttpResponse) -> HttpResponse:
    # The same address answers with the page or, to HTMX, with the panel alone.
    patch_vary_headers(response, ["HX-Request"])
    return response


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


def _not_seen(request: HttpRequest, service_id: str, source_name: str) -> HttpResponse:
    if source_name:
        message = gettext("No service with id %(id)s in source %(source)s has been seen.") % {
            "id": repr(service_id),
            "source": repr(source_name),
        }
    else:
        message = gettext("No service with id %(id)s has been seen.") % {"id": repr(service_id)}
    return _problem(request, 404, message, service_id, source_name)


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
