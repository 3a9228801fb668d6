"""What every page's header needs."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from dashboard.queries.alerts import firing_count
from dashboard.web.format import ui_text
from dashboard.web.saved_views import menu_entries


def navigation(request: HttpRequest) -> dict:
    # The functions, not their results: templates call them only when they draw the header,
    # so a partial (which has none) costs no query.
    return {
        # The shared saved views and the user's own.
        "saved_views_menu": lambda: menu_entries(request.user),
        "alerts_firing": firing_count,
        "ui_text": ui_text,
        "dashboard_time_zone": settings.DASHBOARD_TIME_ZONE,
    }
