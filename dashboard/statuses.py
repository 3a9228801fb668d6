"""How each service status is ranked and shown. Statuses are an open set: anything the API
sends that is not listed here is "unknown" and ranks just below the failing ones, never healthy.

Labels are what people read, in their language (the words of the ModelArts console); the status
itself, as the API sends it, is what URLs, CSV, JSON and alerts' labels carry.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import pgettext_lazy


@dataclass(frozen=True)
class StatusStyle:
    severity: int  # 0 is the most urgent; the table's default sort and the tiles use it
    tone: str  # CSS modifier of the badge
    label: str | Promise  # translated when shown
    busy: bool = False  # a transitional state, shown with a trailing "…"


STYLES: dict[str, StatusStyle] = {
    "failed": StatusStyle(0, "bad", pgettext_lazy("service status", "failed")),
    "concerning": StatusStyle(1, "warn", pgettext_lazy("service status", "concerning")),
    "deploying": StatusStyle(3, "info", pgettext_lazy("service status", "deploying")),
    "pending": StatusStyle(4, "info", pgettext_lazy("service status", "pending")),
    "waiting": StatusStyle(5, "info", pgettext_lazy("service status", "waiting")),
    "stopping": StatusStyle(6, "muted", pgettext_lazy("service status", "stopping"), busy=True),
    "deleting": StatusStyle(7, "muted", pgettext_lazy("service status", "deleting"), busy=True),
    "running": StatusStyle(8, "ok", pgettext_lazy("service status", "running")),
    "stopped": StatusStyle(9, "muted", pgettext_lazy("service status", "stopped")),
    "finished": StatusStyle(10, "done", pgettext_lazy("service status", "finished")),
}
UNKNOWN_SEVERITY = 2
# Tiles louder than the rest: these need someone to look.
ALERTING = frozenset({"failed", "concerning"})
# Inference types the console names; any other is shown as the API sends it.
INFER_TYPES = {
    "real-time": pgettext_lazy("inference type", "real-time"),
    "batch": pgettext_lazy("inference type", "batch"),
    "edge": pgettext_lazy("inference type", "edge"),
}


def style_for(status: str) -> StatusStyle:
    known = STYLES.get(status)
    if known is not None:
        return known
    label = format_lazy(
        pgettext_lazy("service status", "unknown: {status}"),
        status=status or pgettext_lazy("service status", "(empty)"),
    )
    return StatusStyle(UNKNOWN_SEVERITY, "unknown", label)


def severity(status: str) -> int:
    known = STYLES.get(status)
    return UNKNOWN_SEVERITY if known is None else known.severity


def status_label(status: str) -> str:
    """The status as people read it, in the active language."""
    return str(style_for(status).label)


def infer_type_label(infer_type: str) -> str:
    """A known inference type in the console's words; any other as the API sent it."""
    return str(INFER_TYPES.get(infer_type, infer_type))
