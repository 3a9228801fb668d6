"""/events/ and /api/events: fleet-wide status changes, newest first."""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET

from dashboard.models import StatusChange
from dashboard.queries.events import APPEARED
from dashboard.queries.freshness import freshness
from dashboard.queries.sources import all_sources, enabled
from dashboard.statuses import STYLES, style_for
from dashboard.web.format import iso_utc
from dashboard.web.htmx import render_page
from dashboard.web.params import EventFilterForm

EVENTS_PER_PAGE = 50


def _events_page(request: HttpRequest) -> tuple[EventFilterForm, dict, Page]:
    form, errors = EventFilterForm(request.GET), {}
    if not form.is_valid():
        errors = {name: list(messages) for name, messages in form.errors.items()}
        form = EventFilterForm(QueryDict())  # an empty filter to build the page's links from
        form.is_valid()
    changes = form.changes()
    page = Paginator(changes.none() if errors else changes, EVENTS_PER_PAGE)
    return form, errors, page.get_page(form.cleaned_data["page"])


@require_GET
def event_list(request: HttpRequest) -> HttpResponse:
    """What changed, where, and when (between which polls)."""
    form, errors, page = _events_page(request)
    last = page.paginator.num_pages
    context = {
        "filter": form.cleaned_data,
        "errors": errors,
        "page": page,
        "rows": [change_row(change) for change in page.object_list],
        "sources": [freshness(source) for source in enabled(all_sources())],
        "status_choices": [
            (APPEARED, pgettext("status change", "appeared")),
            *((name, style.label) for name, style in STYLES.items()),
        ],
        "query": form.query_string(page=page.number),
        "prev_query": form.query_string(page=max(1, page.number - 1)),
        "next_query": form.query_string(page=min(last, page.number + 1)),
        "api_query": form.query_string(page=page.number),
        "refresh_seconds": settings.DASHBOARD_REFRESH_SECONDS,
        "section": "events",
    }
    status = 400 if errors else 200
    return render_page(
        request, "dashboard/events.html", "dashboard/_events.html", context, status=status
    )


def change_row(change: StatusChange) -> dict:
    """A status change and the badges of its two statuses."""
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
                    "at": iso_utc(change.at),
                    "previous_poll_at": iso_utc(change.previous_poll_at),
                    "source": change.source.name,
                    "service_id": change.service.service_id,
                    "service_name": change.service.service_name,
                    "from_status": change.from_status or None,
                    "to_status": change.to_status,
                    "transition_at": iso_utc(change.transition_at),
                }
                for change in page.object_list
            ],
        }
    )
