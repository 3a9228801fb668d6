"""/polls/: every poll run, newest first: when each source was polled, how it went, and why not."""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET

from dashboard.queries.freshness import freshness
from dashboard.queries.sources import all_sources, enabled
from dashboard.web.htmx import render_page
from dashboard.web.params import PollFilterForm

POLLS_PER_PAGE = 50


@require_GET
def poll_list(request: HttpRequest) -> HttpResponse:
    form, errors = PollFilterForm(request.GET), {}
    if not form.is_valid():
        errors = {name: list(messages) for name, messages in form.errors.items()}
        form = PollFilterForm({})  # an empty filter to build the page's links from
        form.is_valid()
    runs = form.runs()
    page = Paginator(runs.none() if errors else runs, POLLS_PER_PAGE)
    page = page.get_page(form.cleaned_data["page"])
    context = {
        "filter": form.cleaned_data,
        "errors": errors,
        "page": page,
        "sources": [freshness(source) for source in enabled(all_sources())],
        "query": form.query_string(),
        "prev_query": form.query_string(page=max(1, page.number - 1)),
        "next_query": form.query_string(page=min(page.paginator.num_pages, page.number + 1)),
        "refresh_seconds": settings.DASHBOARD_REFRESH_SECONDS,
        "section": "polls",
        "outcomes": [
            (label, value, form.query_string(outcome=value, page=1))
            for label, value in (
                (pgettext("poll outcome", "all"), ""),
                (pgettext("poll outcome", "ok"), "ok"),
                (pgettext("poll outcome", "failed"), "failed"),
            )
        ],
    }
    status = 400 if errors else 200
    return render_page(
        request, "dashboard/polls.html", "dashboard/_polls.html", context, status=status
    )
