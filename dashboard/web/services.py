"""The service table (/), its exports (/services.csv, /services.json, /api/services) and
"Refresh now"."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from itertools import chain

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError
from django.http import (
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext, pgettext
from django.views.decorators.http import require_GET, require_POST

from dashboard.models import Service, Source
from dashboard.queries.detectors import DETECTORS
from dashboard.queries.freshness import freshness
from dashboard.queries.services import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_SORT,
    DEFAULT_WINDOW_SORT,
    PAGE_SIZES,
    UNSHOWN,
    alerting,
    choices,
    details,
    owner_choices,
    page_of,
    per_status,
)
from dashboard.queries.sources import all_sources, enabled
from dashboard.queries.windows import WINDOWS
from dashboard.statuses import ALERTING, STYLES, infer_type_label, status_label, style_for
from dashboard.web.columns import Column, Row, columns_for, detector_label, table_columns
from dashboard.web.format import ago_in_words, iso_utc
from dashboard.web.format import count as count_text
from dashboard.web.htmx import render_page, wants_partial
from dashboard.web.params import ServiceView, parse_filter
from dashboard.web.table import rows_html
from dashboard.web.tokens import api_auth
from dashboard.web.visits import last_visit, record_visit

log = logging.getLogger(__name__)
# "Refresh now" asks for a poll at most this often per source, however fast anyone clicks.
REFRESH_MIN_GAP = 5
# While a requested poll is pending, the table looks for its result this often (seconds).
PENDING_REFRESH_SECONDS = 2
# The slower auto-refresh intervals a reader may choose for their browser (seconds).
REFRESH_CHOICES = (30, 60, 300)


@require_GET
def service_list(request: HttpRequest) -> HttpResponse:
    return _render_services(request)


@require_POST
def refresh(request: HttpRequest) -> HttpResponse:
    """Ask the pollers to poll every shown source now (a click), or only the overdue ones (an
    open page whose data went stale). The request never polls itself: a poll of a large source
    could outlive the web worker's timeout.

    Any signed-in user's page may ask for an overdue poll (that keeps data fresh between
    scheduled polls); polling on demand is the operator's right.
    """
    only_if_due = request.POST.get("due") == "1"
    if not only_if_due and not request.user.has_perm("dashboard.refresh_source"):
        raise PermissionDenied(gettext("Polling on demand needs the operator role."))
    notes = []
    for source in enabled(all_sources()):
        try:
            notes.append(_ask_for_poll(source, only_if_due=only_if_due))
        except DatabaseError:
            # The poller holds the write lock for a long moment, say; the page stays usable.
            log.warning("poll request for %s could not be saved", source.name, exc_info=True)
            notes.append(
                gettext("%(source)s: the database is busy, try again in a moment")
                % {"source": source.name}
            )
    if not request.htmx:
        return redirect(parse_filter(request.GET)[0].url())
    # The answer to a refresh never asks for another one: no loops, whatever happened.
    notes = [note for note in notes if note]
    return _render_services(request, notes=notes, partial=True, may_ask_for_poll=False)


def _ask_for_poll(source: Source, *, only_if_due: bool) -> str:
    """Record a request for a poll of the source; what to tell the user about it."""
    now = timezone.now()
    if source.is_polling(now):
        return gettext("%(source)s: a poll is already running") % {"source": source.name}
    if only_if_due:
        if source.is_overdue(now):
            source.request_poll(now)
        return ""
    if source.last_poll_at and (now - source.last_poll_at).total_seconds() < REFRESH_MIN_GAP:
        seconds = int((now - source.last_poll_at).total_seconds())
        return gettext("%(source)s: polled %(seconds)s s ago") % {
            "source": source.name,
            "seconds": seconds,
        }
    source.request_poll(now)
    return gettext("%(source)s: poll requested") % {"source": source.name}


def _render_services(
    request: HttpRequest,
    *,
    notes: list[str] | None = None,
    partial: bool | None = None,
    may_ask_for_poll: bool = True,
) -> HttpResponse:
    view, errors = parse_filter(request.GET)
    every_source = all_sources()
    sources = enabled(every_source)
    page, counts = page_of(view, every_source, empty=bool(errors))
    replace_url = ""
    if view.page > page.number and request.htmx:
        # A page past the end (the fleet shrank under a bookmark) shows the last page; a swap
        # corrects the address bar to it, a full load goes there.
        replace_url = view.url(page=page.number)
    elif view.page > page.number and request.method == "GET":
        return redirect(view.url(page=page.number))
    view = replace(view, page=page.number)
    columns = table_columns(
        columns_for(window=view.window, since=view.since),
        many_sources=len(sources) > 1 or bool(view.source),
    )
    pending = any(source.poll_requested_at for source in sources)
    context = {
        "view": view,
        "errors": errors,
        "page": page,
        "rows": rows_html(
            page.object_list,
            columns,
            source_names={source.pk: source.name for source in every_source},
            since=view.since,
            now=view.now,
            alerting=alerting(list(page.object_list)),
            details=details(list(page.object_list)),
        ),
        "tiles": _tiles(view, counts, {source.pk: source.name for source in every_source}),
        "headers": _headers(view, columns),
        "sources": [freshness(source, view.now) for source in sources],
        "needs_poll": may_ask_for_poll
        and any(source.is_overdue() and not source.poll_requested_at for source in sources),
        "chips": _chips(view),
        "pager": _pager(view, page),
        "status_choices": [(name, style.label) for name, style in STYLES.items()],
        # Statuses in the filter that the dashboard has no word for: shown as sent.
        "unlisted_statuses": [name for name in view.statuses if name not in STYLES],
        "page_sizes": PAGE_SIZES,
        "windows": list(WINDOWS),
        "detectors": [(name, detector_label(name)) for name in DETECTORS],
        "since_param": iso_utc(view.since) or "",
        "defaults": {
            "sort": DEFAULT_SORT,
            "window_sort": DEFAULT_WINDOW_SORT,
            "per_page": str(DEFAULT_PAGE_SIZE),
        },
        "notes": notes or [],
        # A requested poll's result is looked for soon, not at the next regular refresh.
        "refresh_pending": pending,
        "refresh_seconds": PENDING_REFRESH_SECONDS
        if pending
        else settings.DASHBOARD_REFRESH_SECONDS,
        "query": view.query_string(),
        "url": view.url(),
        # Exports carry the filters and the sort, never the page: they hold every row.
        "export_query": view.query_string(page=1, per_page=DEFAULT_PAGE_SIZE),
        "section": "services",
    }
    partial = wants_partial(request) if partial is None else partial
    # A full load is a visit; a refresh or a click inside the page only reads when the last
    # one ended.
    visit = last_visit(request.user) if partial else record_visit(request.user, timezone.now())
    context["last_visit"] = visit and {
        "url": view.url(since=visit, page=1),
        "ago": ago_in_words(visit),
        "iso": iso_utc(visit),
    }
    if not partial:  # the filter form: the partial (an auto-refresh, say) leaves it in place
        context["owners"] = owner_choices(every_source, view.owner)
        context["refresh_choices"] = refresh_choices(settings.DASHBOARD_REFRESH_SECONDS)
        context["infer_types"] = [
            (name, infer_type_label(name))
            for name in choices(every_source, "infer_type", view.infer_type)
        ]
    response = render_page(
        request,
        "dashboard/services.html",
        "dashboard/_services.html",
        context,
        status=400 if errors else 200,
        as_partial=partial,
    )
    if replace_url:
        response["HX-Replace-Url"] = replace_url
    return response


def refresh_choices(default: int) -> list[tuple[str, str]]:
    """The auto-refresh intervals a reader may pick: the server's own, a few slower ones."""
    slower = [seconds for seconds in REFRESH_CHOICES if seconds > default]
    return [("auto", _every(default)), *((str(s), _every(s)) for s in slower)]


def _every(seconds: int) -> str:
    if seconds % 60:
        return gettext("every %(seconds)s s") % {"seconds": seconds}
    return gettext("every %(minutes)s min") % {"minutes": seconds // 60}


def _tiles(
    view: ServiceView, by_source: dict[tuple[str, int], int], names: dict[int, str]
) -> list[dict]:
    """A tile per status, with its count in each source (shown on hover) when there are
    several."""
    counts = per_status(by_source)
    per_source: dict[str, list[str]] = {}
    for (status, source_id), n in sorted(by_source.items(), key=lambda i: names[i[0][1]]):
        per_source.setdefault(status, []).append(f"{names[source_id]}: {count_text(n)}")
    several = len({source_id for _, source_id in by_source}) > 1
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
                "by_source": " · ".join(per_source[status]) if several else "",
                # A tile toggles its status in the filter; the page goes back to 1.
                "url": view.url(status=others if selected else [*view.statuses, status], page=1),
            }
        )
    return tiles


def _headers(view: ServiceView, columns: list[Column]) -> list[dict]:
    # "Failing now" is the windowed rate, descending (then the most severe status first).
    sort = "-wrate" if view.sort == "failing" else view.sort
    headers = []
    for column in columns:
        key = column.sort
        current = sort.lstrip("-") == key
        descending = sort.startswith("-")
        # Numbers sort biggest first on the first click: that is what people look for.
        first = f"-{key}" if column.numeric else key
        next_sort = (key if descending else f"-{key}") if current else first
        headers.append(
            {
                "key": key,
                "col": column.name,
                "label": column.label.format(window=view.window),
                "numeric": column.numeric,
                "aria_sort": ("descending" if descending else "ascending") if current else "none",
                "url": view.url(sort=next_sort, page=1) if key else "",
            }
        )
    return headers


def _chips(view: ServiceView) -> list[dict]:
    """Each active filter as a link that removes just that filter."""
    chips = [
        {
            # A status the dashboard does not know is named as the API sends it.
            "label": _chip(pgettext("filter", "status"), status_label(s) if s in STYLES else s),
            "url": view.url(status=[x for x in view.statuses if x != s], page=1),
        }
        for s in view.statuses
    ]
    for name, label in (
        ("infer_type", pgettext("filter", "type")),
        ("owner", pgettext("filter", "owner")),
        ("source", pgettext("filter", "source")),
        ("q", pgettext("filter", "search")),
    ):
        value = getattr(view, name)
        if value:
            shown = infer_type_label(value) if name == "infer_type" else value
            chips.append({"label": _chip(label, shown), "url": view.url(**{name: "", "page": 1})})
    if view.window:
        label = _chip(pgettext("filter", "window"), view.window)
        chips.append({"label": label, "url": view.without_window()})
    if view.since:
        label = _chip(pgettext("filter", "changed since"), iso_utc(view.since))
        chips.append({"label": label, "url": view.url(since=None, page=1)})
    for name in view.detect:
        others = [d for d in view.detect if d != name]
        label = _chip(pgettext("filter", "detect"), detector_label(name))
        chips.append({"label": label, "url": view.url(detect=others, page=1)})
    if view.below:
        label = gettext("below desired instances")
        chips.append({"label": label, "url": view.url(below="", page=1)})
    return chips


def _chip(name: str, value: str) -> str:
    """An active filter as its chip reads: 'status: failed'."""
    return pgettext("filter chip", "%(filter)s: %(value)s") % {"filter": name, "value": value}


def _pager(view: ServiceView, page: Page) -> dict[str, str]:
    last = page.paginator.num_pages
    return {
        "first": view.url(page=1),
        "prev": view.url(page=max(1, page.number - 1)),
        "next": view.url(page=min(last, page.number + 1)),
        "last": view.url(page=last),
    }


# Rows read per query chunk, and written per chunk of the response, by both exports.
EXPORT_CHUNK = 2000
EXPORT_LINES_PER_WRITE = 100
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@require_GET
def services_csv(request: HttpRequest) -> HttpResponse:
    """Every row of the current filtered, sorted view (not just one page), streamed."""
    view, errors = parse_filter(request.GET)
    if errors:
        problems = "; ".join(f"{name}: {' '.join(m)}" for name, m in errors.items())
        return HttpResponse(f"bad parameters: {problems}\n", status=400, content_type="text/plain")
    columns = columns_for(window=view.window, since=view.since)
    rows = _export_rows(view, all_sources())
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow([column.name for column in columns])
        for service, row in rows:
            yield writer.writerow([_csv_cell(column.value(service, row)) for column in columns])

    return _attachment(_batched(lines()), "text/csv; charset=utf-8", "csv")


@require_GET
def services_json(request: HttpRequest) -> HttpResponse:
    """Every row of the current view (not just one page) as a JSON array of the services
    /api/services lists, in the table's order, written as the rows are read."""
    view, errors = parse_filter(request.GET)
    if errors:
        return JsonResponse({"errors": errors}, status=400)
    columns = [c for c in columns_for(window=view.window, since=view.since) if c.json_path[0]]
    rows = _export_rows(view, all_sources())
    encode = DjangoJSONEncoder().encode  # as JsonResponse writes /api/services

    def items() -> Iterator[str]:
        yield "["
        for n, (service, row) in enumerate(rows):
            yield ("," if n else "") + "\n" + encode(_service_json(service, row, columns))
        yield "\n]\n"

    return _attachment(_batched(items()), "application/json", "json")


def _export_rows(view: ServiceView, every_source: list[Source]) -> Iterator[tuple[Service, Row]]:
    """Every row of the view, with what its cells need, read in chunks: 100,000 services never
    sit in memory at once."""
    names = {source.pk: source.name for source in every_source}
    # The stored detail rides along (a LEFT JOIN): an export is read once, front to back.
    parts = view.rows(Service.objects.defer(*UNSHOWN).select_related("detail"), every_source)
    for service in chain.from_iterable(rows.iterator(chunk_size=EXPORT_CHUNK) for rows in parts):
        # None when it has none (the missing reverse one-to-one is an AttributeError).
        detail = getattr(service, "detail", None)
        yield service, Row(names[service.source_id], "", view.now, {}, detail=detail)


def _batched(lines: Iterator[str]) -> Iterator[str]:
    """Lines joined a hundred at a time: one write per row would be a system call per row."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == EXPORT_LINES_PER_WRITE:
            yield "".join(batch)
            batch.clear()
    if batch:
        yield "".join(batch)


def _attachment(content: Iterator[str], content_type: str, extension: str) -> HttpResponse:
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(content, content_type=content_type)
    filename = f"modelarts-services-{stamp}.{extension}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class _Echo:
    """csv.writer wants a file; handing each line straight back lets the response stream it."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value  # shown as text, never evaluated
    return value


@require_GET
@api_auth
def api_services(request: HttpRequest) -> JsonResponse:
    """The table's current view as JSON: same parameters, same rows, same order."""
    view, errors = parse_filter(request.GET)
    if errors:
        return JsonResponse({"errors": errors}, status=400)
    every_source = all_sources()
    names = {source.pk: source.name for source in every_source}
    page, _ = page_of(view, every_source, empty=False)
    columns = [c for c in columns_for(window=view.window, since=view.since) if c.json_path[0]]
    stored = details(list(page.object_list))
    return JsonResponse(
        {
            "count": page.paginator.count,
            "page": page.number,
            "pages": page.paginator.num_pages,
            "per_page": view.per_page,
            "sort": view.sort,
            "window": view.window or None,
            "since": iso_utc(view.since),
            "sources": [source_json(s) for s in enabled(every_source)],
            "services": [
                _service_json(
                    service,
                    Row(names[service.source_id], "", view.now, {}, detail=stored.get(service.pk)),
                    columns,
                )
                for service in page.object_list
            ],
        }
    )


def source_json(source: Source) -> dict:
    return {
        "name": source.name,
        "last_success_at": iso_utc(source.last_success_at),
        "last_poll_at": iso_utc(source.last_poll_at),
        "stale": source.is_stale(),
        "last_error": source.last_error or None,
    }


def _service_json(service: Service, row: Row, columns: list[Column]) -> dict:
    data: dict = {}
    for column in columns:
        *parents, key = column.json_path
        into = data
        for parent in parents:
            into = into.setdefault(parent, {})
        value = column.value(service, row)
        into[key] = iso_utc(value) if isinstance(value, datetime) else value
    return data
