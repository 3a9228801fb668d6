"""How each service status is ranked and shown. Statuses are an open set: anything the API
sends that is not listed here is "unknown" and ranks just below the failing ones, never healthy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StatusStyle:
    severity: int  # 0 is the most urgent; the table's default sort and the tiles use it
    tone: str  # CSS modifier of the badge
    label: str
    busy: bool = False  # a transitional state, shown with a trailing "…"


STYLES: dict[str, StatusStyle] = {
    "failed": StatusStyle(0, "bad", "failed"),
    "concerning": StatusStyle(1, "warn", "concerning"),
    "deploying": StatusStyle(3, "info", "deploying"),
    "pending": StatusStyle(4, "info", "pending"),
    "waiting": StatusStyle(5, "info", "waiting"),
    "stopping": StatusStyle(6, "muted", "stopping", busy=True),
    "deleting": StatusStyle(7, "muted", "deleting", busy=True),
    "running": StatusStyle(8, "ok", "running"),
    "stopped": StatusStyle(9, "muted", "stopped"),
    "finished": StatusStyle(10, "done", "finished"),
}
UNKNOWN_SEVERITY = 2
# Tiles louder than the rest: these need someone to look.
ALERTING = frozenset({"failed", "concerning"})


def style_for(status: str) -> StatusStyle:
    known = STYLES.get(status)
    if known is not None:
        return known
    return StatusStyle(UNKNOWN_SEVERITY, "unknown", f"unknown: {status or '(empty)'}")


def severity(status: str) -> int:
    return style_for(status).severity
