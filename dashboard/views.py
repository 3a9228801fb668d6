"""One function per page; the same view serves the full page and its HTMX partial."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db import DatabaseError, connection
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    JsonResponse,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from dashboard import polling
from dashboard.filters import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_SORT,
    DEFAULT_WINDOW_SORT,
    DETECTORS,
    PAGE_SIZES,
    WINDOWS,
    EventFilterForm,
    PollFilterForm,
    ServiceFilter,
    disabled_ids,
    iso_utc,
    parse_filter,
)
from dashboard.models import PollRun, Service, Source, StatusChange
from dashboard.service_table import rows_html
from dashboard.sources import sync_env_source
from dashboard.statuses import ALERTING, STYLES, style_for

log = logging.getLogger(__name__)
# "Refresh now" polls at most this often per source, however fast anyone clicks.
REFRESH_MIN_GAP = 5
# Columns neither the table nor /api/services shows (the service page and the CSV read theirs).
UNSHOWN = ("raw", "additional_properties", "schedule")
# The owner and type choice lists: at most this many values.
CHOICES_MAX = 200
_env_source_synced = False


def _all_sources() -> list[Source]:
    """Every source, enabled or not (the service filters leave out the disabled ones' rows)."""
    global _env_source_synced
    if not _env_source_synced:
        # Once per process: a plain `runserver` with MODELARTS_* set needs no separate setup.
        sync_env_source()
        _env_source_synced = True
    return list(Source.objects.all())


def _sources(every: list[Source] | None = None) -> list[Source]:
    """The enabled sources (of `every`, when the caller has read them already)."""
    return [source for source in (_all_sources() if every is None else every) if source.enabled]


def _wants_partial(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


@require_GET
def service_list(request: HttpRequest) -> HttpResponse:
    return _render_services(request)


@require_POST
def refresh(request: HttpRequest) -> HttpResponse:
    """Poll now: every shown source on a click, only the overdue ones when a stale page asks.

    Any signed-in user's page may ask for an overdue poll (that keeps data fresh without a
    poller); polling on demand is the operator's right.
    """
    only_if_due = request.POST.get("due") == "1"
    if not only_if_due and not request.user.has_perm("dashboard.refresh_source"):
        raise PermissionDenied("Polling on demand needs the operator role.")
    notes = []
    for source in _sources():
        try:
            polling.poll_source(source, only_if_due=only_if_due, min_gap=REFRESH_MIN_GAP)
        except polling.SourceBusy as exc:
            notes.append(str(exc))
        except DatabaseError:
            # The poller holds the write lock for a long moment, say; the page stays usable.
            log.warning("refresh of %s could not start", source.name, exc_info=True)
            notes.append(f"{source.name}: the database is busy, try again in a moment")
    if not request.htmx:
        return redirect(parse_filter(request.GET)[0].url())
    # The answer to a refresh never asks for another one: no loops, whatever happened.
    return _render_services(request, notes=notes, partial=True, may_ask_for_poll=False)


def _render_services(
    request: HttpRequest,
    *,
    notes: list[str] | None = None,
    partial: bool | None = None,
    may_ask_for_poll: bool = True,
) -> HttpResponse:
    view, errors = parse_filter(request.GET)
    every_source = _all_sources()
    sources = _sources(every_source)
    page, counts = _page(view, Service.objects.all(), every_source, empty=bool(errors))
    view = replace(view, page=page.number)  # a page past the end shows (and links) the last
    context = {
        "view": view,
        "errors": errors,
        "page": page,
        "rows": rows_html(
            page.object_list, window=bool(view.window), since=view.since, now=view.now
        ),
        "tiles": _tiles(view, counts),
        "headers": _headers(view),
        "sources": [_freshness(source) for source in sources],
        "needs_poll": may_ask_for_poll and any(source.is_overdue() for source in sources),
        "chips": _chips(view),
        "pager": _pager(view, page),
        "status_names": list(STYLES),
        "page_sizes": PAGE_SIZES,
        "windows": list(WINDOWS),
        "detectors": DETECTORS,
        "since_param": _iso(view.since) or "",
        "defaults": {
            "sort": DEFAULT_SORT,
            "window_sort": DEFAULT_WINDOW_SORT,
            "per_page": str(DEFAULT_PAGE_SIZE),
        },
        "notes": notes or [],
        "refresh_seconds": settings.DASHBOARD_REFRESH_SECONDS,
        "query": view.query_string(),
        "url": view.url(),
        # Exports carry the filters and the sort, never the page: they hold every row.
        "export_query": view.query_string(page=1, per_page=DEFAULT_PAGE_SIZE),
        "section": "services",
    }
    partial = _wants_partial(request) if partial is None else partial
    if not partial:  # the filter form: the partial (an auto-refresh, say) leaves it in place
        context["owners"] = _choices(every_source, "owner", view.owner)
        context["infer_types"] = _choices(every_source, "infer_type", view.infer_type)
    template = "dashboard/_services.html" if partial else "dashboard/services.html"
    response = render(request, template, context, status=400 if errors else 200)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _page(
    view: ServiceFilter, services: QuerySet[Service], sources: list[Source], *, empty: bool
) -> tuple[Page, dict[str, int]]:
    """One page of the view, and its services per status (the tiles), in two queries."""
    if empty:
        return Paginator(services.none(), view.per_page).get_page(1), {}
    counts = view.status_counts(services, sources)
    # The raw item and JSON fields stay unread: the table and the JSON list never show them.
    services = services.defer(*UNSHOWN)
    rows = view.rows(services, sources)
    paginator = CountedPaginator(rows, view.per_page, count=view.count(counts))
    return paginator.get_page(view.page), counts


class CountedPaginator(Paginator):
    """A paginator told its count (the tiles' query has it already) that reads a page past the
    middle from the far end, in the reverse order: OFFSET skips rows one by one, so the last
    page would otherwise cost a walk through the whole index."""

    def __init__(self, rows: QuerySet, per_page: int, *, count: int):
        super().__init__(rows, per_page)
        self.known_count = count

    @property
    def count(self) -> int:
        return self.known_count

    def page(self, number: int | str) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = min(bottom + self.per_page, self.count)
        if bottom <= self.count - top:
            return self._get_page(self.object_list[bottom:top], number, self)
        rows = list(self.object_list.reverse()[self.count - top : self.count - bottom])
        return self._get_page(rows[::-1], number, self)


def _tiles(view: ServiceFilter, counts: dict[str, int]) -> list[dict]:
    tiles = []
    for status, count in sorted(counts.items(), key=lambda item: style_for(item[0]).severity):
        selected = status in view.statuses
        others = [s for s in view.statuses if s != status]
        style = style_for(status)
        tiles.append(
            {
                "count": count,
                "style": style,
                "loud": status in ALERTING or style.tone == "unknown",
                "selected": selected,
                # A tile toggles its status in the filter; the page goes back to 1.
                "url": view.url(status=others if selected else [*view.statuses, status], page=1),
            }
        )
    return tiles


def _headers(view: ServiceFilter) -> list[dict]:
    columns = [
        ("name", "Service", False),
        ("status", "Status", False),
        ("type", "Type", False),
        ("owner", "Owner", False),
        ("calls", "Invocations", True),
        ("failures", "Failures", True),
        ("rate", "Failure rate", True),
        *(
            [
                ("wcalls", f"Calls ({view.window})", True),
                ("wfailures", f"Failures ({view.window})", True),
                ("wrate", f"Failure rate ({view.window})", True),
            ]
            if view.window
            else []
        ),
        ("delta", "Calls since last poll", True),
        ("published", "Published", False),
    ]
    # "Failing now" is the windowed rate, descending (then the most severe status first).
    sort = "-wrate" if view.sort == "failing" else view.sort
    headers = []
    for key, label, numeric in columns:
        current = sort.lstrip("-") == key
        descending = sort.startswith("-")
        # Numbers sort biggest first on the first click: that is what people look for.
        first = f"-{key}" if numeric else key
        next_sort = (key if descending else f"-{key}") if current else first
        headers.append(
            {
                "label": label,
                "numeric": numeric,
                "aria_sort": ("descending" if descending else "ascending") if current else "none",
                "url": view.url(sort=next_sort, page=1),
            }
        )
    return headers


def _freshness(source: Source) -> dict:
    now = timezone.now()
    return {
        "source": source,
        "as_of": source.last_success_at,
        "age_seconds": _seconds_between(source.last_success_at, now),
        "next_poll_at": source.next_poll_at(),
        "stale": source.is_stale(now),
        "failing": source.failures_since_success > 0,
    }


def _seconds_between(earlier: datetime | None, later: datetime) -> int | None:
    return None if earlier is None else max(0, int((later - earlier).total_seconds()))


def _choices(sources: list[Source], column: str, current: str) -> list[str]:
    """The distinct values of a column in the enabled sources' services, by a loose index scan:
    one seek in the column's index per value (a fleet has a handful of owners and types),
    rather than a read of every row."""
    table = connection.ops.quote_name(Service._meta.db_table)
    name = connection.ops.quote_name(column)
    disabled = disabled_ids(sources)
    # Excluded, not listed, as in ServiceFilter.apply: so SQLite seeks in the column's index.
    where = "gone_at IS NULL"
    if disabled:
        where += f" AND source_id NOT IN ({', '.join(['%s'] * len(disabled))})"
    step = f"SELECT {name} FROM {table} WHERE {where} AND {name} > %s ORDER BY {name} LIMIT 1"
    sql = (
        f"WITH RECURSIVE seen(value, n) AS (SELECT ({step}), 1 UNION ALL "
        f"SELECT ({step.replace('> %s', '> seen.value')}), n + 1 FROM seen "
        f"WHERE seen.value IS NOT NULL AND n < {CHOICES_MAX}) "
        "SELECT value FROM seen WHERE value IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*disabled, "", *disabled])
        values = [row[0] for row in cursor.fetchall()]
    # A bookmarked value no longer present stays selectable, so the form doesn't drop it.
    return values if not current or current in values else [current, *values]


def _chips(view: ServiceFilter) -> list[dict]:
    """Each active filter as a link that removes just that filter."""
    chips = [
        {
            "label": f"status: {s}",
            "url": view.url(status=[x for x in view.statuses if x != s], page=1),
        }
        for s in view.statuses
    ]
    for name, label in (
        ("infer_type", "type"),
        ("owner", "owner"),
        ("source", "source"),
        ("q", "search"),
    ):
        value = getattr(view, name)
        if value:
            chips.append({"label": f"{label}: {value}", "url": view.url(**{name: "", "page": 1})})
    if view.window:
        chips.append({"label": f"window: {view.window}", "url": view.without_window()})
    if view.since:
        label = f"changed since: {_iso(view.since)}"
        chips.append({"label": label, "url": view.url(since=None, page=1)})
    for name in view.detect:
        others = [d for d in view.detect if d != name]
        chips.append({"label": f"detect: {name}", "url": view.url(detect=others, page=1)})
    return chips


def _pager(view: ServiceFilter, page: Page) -> dict[str, str]:
    last = page.paginator.num_pages
    return {
        "first": view.url(page=1),
        "prev": view.url(page=max(1, page.number - 1)),
        "next": view.url(page=min(last, page.number + 1)),
        "last": view.url(page=last),
    }


# The CSV's columns: header → value of the row (a values_list over these lookups).
CSV_COLUMNS = [
    ("source", "source__name"),
    ("service_id", "service_id"),
    ("service_name", "service_name"),
    ("description", "description"),
    ("status", "status"),
    ("progress", "progress"),
    ("infer_type", "infer_type"),
    ("owner", "owner"),
    ("workspace_id", "workspace_id"),
    ("invocation_times", "invocation_times"),
    ("failed_times", "failed_times"),
    ("failure_rate", "failure_rate"),
    ("calls_since_previous_poll", "calls_delta"),
    ("publish_at", "publish_at"),
    ("transition_at", "transition_at"),
    ("status_changed_at", "status_changed_at"),
    ("first_seen_at", "first_seen_at"),
]
# Columns the view's parameters add: over the window, changed since, detectors.
CSV_WINDOW_COLUMNS = [
    ("calls_in_window", "w_calls"),
    ("failures_in_window", "w_failures"),
    ("failure_rate_in_window", "w_rate"),
]
CSV_SINCE_COLUMNS = [("status_changed_since", "since_status"), ("failing_since", "since_failing")]
CSV_DETECTOR_COLUMNS = [(name, f"is_{name}") for name in DETECTORS]
CSV_CHUNK = 2000
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@require_GET
def services_csv(request: HttpRequest) -> HttpResponse:
    """Every row of the current filtered, sorted view (not just one page), streamed."""
    view, errors = parse_filter(request.GET)
    if errors:
        problems = "; ".join(f"{name}: {' '.join(m)}" for name, m in errors.items())
        return HttpResponse(f"bad parameters: {problems}\n", status=400, content_type="text/plain")
    columns = _csv_columns(view)
    lookups = [lookup for _, lookup in columns]
    rows = view.rows(Service.objects.all(), _all_sources())
    rows = rows.values_list(*lookups)
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow([header for header, _ in columns])
        # iterator(): rows are read in chunks, so 100,000 services never sit in memory at once.
        for row in rows.iterator(chunk_size=CSV_CHUNK):
            yield writer.writerow([_csv_cell(value) for value in row])

    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="modelarts-services-{stamp}.csv"'
    return response


def _csv_columns(view: ServiceFilter) -> list[tuple[str, str]]:
    return [
        *CSV_COLUMNS,
        *(CSV_WINDOW_COLUMNS if view.window else []),
        *(CSV_SINCE_COLUMNS if view.since else []),
        *CSV_DETECTOR_COLUMNS,
    ]


class _Echo:
    """csv.writer wants a file; handing each line straight back lets the response stream it."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value  # shown as text, never evaluated
    return value


@require_GET
def api_services(request: HttpRequest) -> JsonResponse:
    """The table's current view as JSON: same parameters, same rows, same order."""
    view, errors = parse_filter(request.GET)
    if errors:
        return JsonResponse({"errors": errors}, status=400)
    every_source = _all_sources()
    names = {source.pk: source.name for source in every_source}
    page, _ = _page(view, Service.objects.all(), every_source, empty=False)
    return JsonResponse(
        {
            "count": page.paginator.count,
            "page": page.number,
            "pages": page.paginator.num_pages,
            "per_page": view.per_page,
            "sort": view.sort,
            "window": view.window or None,
            "since": _iso(view.since),
            "sources": [_source_json(s) for s in _sources(every_source)],
            "services": [_service_json(s, names[s.source_id], view) for s in page.object_list],
        }
    )


def _source_json(source: Source) -> dict:
    return {
        "name": source.name,
        "last_success_at": _iso(source.last_success_at),
        "last_poll_at": _iso(source.last_poll_at),
        "stale": source.is_stale(),
        "last_error": source.last_error or None,
    }


def _service_json(service: Service, source_name: str, view: ServiceFilter) -> dict:
    data = {
        "source": source_name,
        "service_id": service.service_id,
        "service_name": service.service_name,
        "description": service.description,
        "status": service.status,
        "progress": service.progress,
        "infer_type": service.infer_type,
        "owner": service.owner,
        "workspace_id": service.workspace_id,
        "invocation_times": service.invocation_times,
        "failed_times": service.failed_times,
        "failure_rate": service.failure_rate,
        "calls_since_previous_poll": service.calls_delta,
        "publish_at": _iso(service.publish_at),
        "transition_at": _iso(service.transition_at),
        "status_changed_at": _iso(service.status_changed_at),
        "detectors": {name: getattr(service, f"is_{name}") for name in DETECTORS},
    }
    if view.window:
        data["window"] = {
            "calls": service.w_calls,
            "failures": service.w_failures,
            "failure_rate": service.w_rate,
        }
    if view.since:
        data["changed_since"] = {
            "status": service.since_status,
            "failures": service.since_failing,
        }
    return data


def _iso(value: datetime | None) -> str | None:
    return iso_utc(value) if value else None


POLLS_PER_PAGE = 50


@require_GET
def poll_list(request: HttpRequest) -> HttpResponse:
    """Every poll run, newest first: when each source was polled, how it went, and why not."""
    form, errors = PollFilterForm(request.GET), {}
    if not form.is_valid():
        errors = {name: list(messages) for name, messages in form.errors.items()}
        form = PollFilterForm({})  # an empty filter to build the page's links from
        form.is_valid()
    runs = form.runs(PollRun.objects.all()) if not errors else PollRun.objects.none()
    # The pollrun_source_recent index serves the per-source order; -started_at the rest.
    runs = runs.select_related("source").order_by("-started_at", "-id")
    page = Paginator(runs, POLLS_PER_PAGE).get_page(form.cleaned_data["page"])
    context = {
        "filter": form.cleaned_data,
        "errors": errors,
        "page": page,
        "sources": [_freshness(source) for source in _sources()],
        "query": form.query_string(),
        "prev_query": form.query_string(page=max(1, page.number - 1)),
        "next_query": form.query_string(page=min(page.paginator.num_pages, page.number + 1)),
        "refresh_seconds": settings.DASHBOARD_REFRESH_SECONDS,
        "section": "polls",
        "outcomes": [
            (label, value, form.query_string(outcome=value, page=1))
            for label, value in (("all", ""), ("ok", "ok"), ("failed", "failed"))
        ],
    }
    template = "dashboard/_polls.html" if _wants_partial(request) else "dashboard/polls.html"
    response = render(request, template, context, status=400 if errors else 200)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while every enabled source has fresh data; 503 saying which one is not and why."""
    if settings.DASHBOARD_HEALTHZ_ACCESS == "login" and not request.user.is_authenticated:
        return JsonResponse({"status": "unauthorized"}, status=401)
    now = timezone.now()
    sources = _sources()
    problems = [_health_problem(source, now) for source in sources]
    problems = [problem for problem in problems if problem]
    if not sources:
        problems = ["no source is configured"]
    body = {
        "status": "fail" if problems else "ok",
        "problems": problems,
        "sources": [_source_json(source) for source in sources],
    }
    return JsonResponse(body, status=503 if problems else 200)


def _health_problem(source: Source, now: datetime) -> str | None:
    if not source.is_stale(now):
        return None
    if source.last_success_at is None:
        reason = "never polled successfully"
    else:
        reason = f"last successful poll {_seconds_between(source.last_success_at, now)} s ago"
    if source.last_error:
        reason += f"; last error: {source.last_error}"
    return f"{source.name}: {reason}"


EVENTS_PER_PAGE = 50


def _events_page(request: HttpRequest) -> tuple[EventFilterForm, dict, Page]:
    form, errors = EventFilterForm(request.GET), {}
    if not form.is_valid():
        errors = {name: list(messages) for name, messages in form.errors.items()}
        form = EventFilterForm(QueryDict())  # an empty filter to build the page's links from
        form.is_valid()
    changes = StatusChange.objects.none() if errors else form.changes(StatusChange.objects.all())
    # change_recent serves the newest-first order; select_related keeps it one query per page.
    changes = changes.select_related("service", "source").order_by("-at", "-id")
    page = Paginator(changes, EVENTS_PER_PAGE).get_page(form.cleaned_data["page"])
    return form, errors, page


@require_GET
def event_list(request: HttpRequest) -> HttpResponse:
    """Fleet-wide status changes, newest first: what changed, where, and when (between polls)."""
    form, errors, page = _events_page(request)
    last = page.paginator.num_pages
    context = {
        "filter": form.cleaned_data,
        "errors": errors,
        "page": page,
        "rows": [_event_row(change) for change in page.object_list],
        "sources": [_freshness(source) for source in _sources()],
        "status_names": ["appeared", *STYLES],
        "query": form.query_string(page=page.number),
        "prev_query": form.query_string(page=max(1, page.number - 1)),
        "next_query": form.query_string(page=min(last, page.number + 1)),
        "api_query": form.query_string(page=page.number),
        "refresh_seconds": settings.DASHBOARD_REFRESH_SECONDS,
        "section": "events",
    }
    template = "dashboard/_events.html" if _wants_partial(request) else "dashboard/events.html"
    response = render(request, template, context, status=400 if errors else 200)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _event_row(change: StatusChange) -> dict:
    return {
        "change": change,
        "from_style": style_for(change.from_status) if change.from_status else None,
        "to_style": style_for(change.to_status),
    }


@require_GET
def api_events(request: HttpRequest) -> JsonResponse:
    """The events feed as JSON: same parameters, same order."""
    form, errors, page = _events_page(request)
    if errors:
        return JsonResponse({"errors": errors}, status=400)
    return JsonResponse(
        {
            "count": page.paginator.count,
            "page": page.number,
            "pages": page.paginator.num_pages,
            "events": [
                {
                    "at": _iso(change.at),
                    "previous_poll_at": _iso(change.previous_poll_at),
                    "source": change.source.name,
                    "service_id": change.service.service_id,
                    "service_name": change.service.service_name,
                    "from_status": change.from_status or None,
                    "to_status": change.to_status,
                    "transition_at": _iso(change.transition_at),
                }
                for change in page.object_list
            ],
        }
    )
