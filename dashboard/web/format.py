"""The one set of time and number formatters: pages, rows, exports and JSON all use these."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """'12 s ago', '5 min ago', '3 h ago', '4 d ago'; 'in 18 s' for the future."""
    if value is None:
        return "—"
    seconds = int(((now or timezone.now()) - value).total_seconds())
    text = compact_duration(abs(seconds))
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def until(value: datetime | None) -> str:
    """'in 18 s', or 'due now' once the moment has passed."""
    if value is None:
        return "—"
    seconds = int((value - timezone.now()).total_seconds())
    return f"in {compact_duration(seconds)}" if seconds > 0 else "due now"


def compact_duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def count(value: int | None) -> str:
    """Thousands separators; a dash when the API did not say."""
    return "—" if value is None else f"{value:,}"


def rate(value: float | None) -> str:
    if value is None:
        return "—"
    if 0 < value < 0.0001:
        return "<0.01%"
    return f"{value * 100:.2f}%"


def iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else ""


def clock(value: datetime | None) -> str:
    return value.strftime("%H:%M:%S") if value else "—"


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 with a Z and every digit, as every URL, JSON and CSV of the dashboard writes
    times (iso() is the same to the second, for people); None for no time."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None
