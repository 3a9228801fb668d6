"""/healthz: 200 while every enabled source has fresh data; 503 saying which one is not and why."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from dashboard.queries.freshness import health_problem
from dashboard.queries.sources import all_sources, enabled
from dashboard.web.services import source_json


@require_GET
@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    if settings.DASHBOARD_HEALTHZ_ACCESS == "login" and not request.user.is_authenticated:
        return JsonResponse({"status": "unauthorized"}, status=401)
    now = timezone.now()
    sources = enabled(all_sources())
    problems = [problem for source in sources if (problem := health_problem(source, now))]
    if not sources:
        problems = ["no source is configured"]
    body = {
        "status": "fail" if problems else "ok",
        "problems": problems,
        "sources": [source_json(source) for source in sources],
    }
    return JsonResponse(body, status=503 if problems else 200)
