"""What every page's header needs."""

from __future__ import annotations

from django.http import HttpRequest

from dashboard.queries.alerts import firing_count
from dashboard.web.saved_views import menu_entries


def navigation(request: HttpRequest) -> dict:
    # The functions, not their results: templates call them only when they draw the header,
    # so a partial (which has none) costs no query.
    return {"saved_views_menu": menu_entries, "alerts_firing": firing_count}
