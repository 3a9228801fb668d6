"""Every list page is one view serving both its full page and its HTMX partial."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def wants_partial(request: HttpRequest) -> bool:
    """An HTMX swap, not a history restore (which needs the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def render_page(
    request: HttpRequest,
    page: str,
    partial: str,
    context: dict,
    *,
    status: int = 200,
    as_partial: bool | None = None,
) -> HttpResponse:
    """The page, or its partial when HTMX asks for it; caches keep the two apart."""
    as_partial = wants_partial(request) if as_partial is None else as_partial
    response = render(request, partial if as_partial else page, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response
