"""What every page's header needs."""

from __future__ import annotations

from django.http import HttpRequest

from dashboard.web.saved_views import menu_entries


def navigation(request: HttpRequest) -> dict:
    # The function, not its result: templates call it only when they draw the menu, so a
    # partial (which has no header) costs no query.
    return {"saved_views_menu": menu_entries}
