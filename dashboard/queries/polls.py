"""Poll runs, filtered: the /polls/ page."""

from __future__ import annotations

from django.db.models import QuerySet

from dashboard.models import PollRun


def poll_runs(*, source: str = "", outcome: str = "") -> QuerySet[PollRun]:
    """The runs of a source (or all), "ok" or "failed" ones (or all), newest first."""
    runs = PollRun.objects.all()
    if source:
        runs = runs.filter(source__name=source)
    if outcome:
        runs = runs.filter(ok=outcome == "ok")
    # The pollrun_source_recent index serves the per-source order; -started_at the rest.
    return runs.select_related("source").order_by("-started_at", "-id")
