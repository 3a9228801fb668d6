"""The one set of time and number formatters: pages, rows, exports and JSON all use these.

Words and number formats follow the active language (the page's); iso() and iso_utc() are for
machines and never change.
"""

from __future__ import annotations

import json
from datetime import datetime

from django.utils import dateformat, timezone
from django.utils.formats import get_format
from django.utils.numberformat import format as number_format
from django.utils.timesince import timesince
from django.utils.translation import gettext, pgettext

# Units of compact durations, largest first: ("12 s", "5 min", "3 h", "4 d").
_UNITS = (
    (86400, lambda n: pgettext("duration", "%(count)s d") % {"count": n}),
    (3600, lambda n: pgettext("duration", "%(count)s h") % {"count": n}),
    (60, lambda n: pgettext("duration", "%(count)s min") % {"count": n}),
)


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """'12 s ago', '5 min ago', '3 h ago', '4 d ago'; 'in 18 s' for the future."""
    if value is None:
        return "—"
    seconds = int(((now or timezone.now()) - value).total_seconds())
    return relative(seconds)


def relative(seconds: int) -> str:
    """A moment `seconds` ago (negative: in the future), in words."""
    text = compact_duration(abs(seconds))
    if seconds >= 0:
        return pgettext("time", "%(time)s ago") % {"time": text}
    return pgettext("time", "in %(time)s") % {"time": text}


def ago_in_words(value: datetime, now: datetime | None = None) -> str:
    """'3 hours ago', '2 days ago': a moment people read once, spelled out."""
    return pgettext("time", "%(time)s ago") % {"time": timesince(value, now, depth=1)}


def until(value: datetime | None) -> str:
    """'in 18 s', or 'due now' once the moment has passed."""
    if value is None:
        return "—"
    seconds = int((value - timezone.now()).total_seconds())
    if seconds > 0:
        return pgettext("time", "in %(time)s") % {"time": compact_duration(seconds)}
    return pgettext("time", "due now")


def compact_duration(seconds: int) -> str:
    for size, unit in _UNITS:
        if seconds >= size:
            return unit(seconds // size)
    return pgettext("duration", "%(count)s s") % {"count": seconds}


def count(value: int | float | None) -> str:
    """Thousands separators as the language writes them; a dash when the API did not say."""
    if value is None:
        return "—"
    separator, grouping = get_format("THOUSAND_SEPARATOR"), get_format("NUMBER_GROUPING")
    decimal = get_format("DECIMAL_SEPARATOR")
    if grouping == 3 and decimal == ".":
        # Every language shown so far: Python's own grouping, ten times faster (the table
        # formats a few hundred numbers a page).
        text = f"{value:,}"
        return text if separator == "," else text.replace(",", separator)
    return number_format(
        value, decimal, grouping=grouping, thousand_sep=separator, force_grouping=True
    )


def rate(value: float | None) -> str:
    """A failure rate as a percentage with two decimals ("20.82%"), in the language's digits."""
    if value is None:
        return "—"
    if 0 < value < 0.0001:
        return pgettext("percentage", "<%(number)s%%") % {"number": _decimal("0.01")}
    return pgettext("percentage", "%(number)s%%") % {"number": _decimal(f"{value * 100:.2f}")}


def _decimal(text: str) -> str:
    separator = get_format("DECIMAL_SEPARATOR")
    return text if separator == "." else text.replace(".", separator)


def date(value: datetime, format_string: str) -> str:
    """A moment in a Django date format (month names in the active language), as it is: the
    dashboard shows UTC."""
    return dateformat.format(value, format_string)


def iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else ""


def clock(value: datetime | None) -> str:
    return value.strftime("%H:%M:%S") if value else "—"


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 with a Z and every digit, as every URL, JSON and CSV of the dashboard writes
    times (iso() is the same to the second, for people); None for no time."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def ui_text() -> str:
    """What dashboard.js writes itself (live ages, the copy button), in the page's language, as
    JSON for a <meta> tag (the Content-Security-Policy allows no inline script, data included)."""
    return json.dumps(_ui_words(), ensure_ascii=False)


def _ui_words() -> dict[str, object]:
    return {
        "ago": pgettext("time", "%(time)s ago"),
        "in": pgettext("time", "in %(time)s"),
        "dueNow": pgettext("time", "due now"),
        "units": [
            [86400, pgettext("duration", "%(count)s d")],
            [3600, pgettext("duration", "%(count)s h")],
            [60, pgettext("duration", "%(count)s min")],
            [1, pgettext("duration", "%(count)s s")],
        ],
        "copy": pgettext("button", "copy"),
        "copied": gettext("copied"),
        "sinceTitle": gettext("Highlight what changed since %(time)s"),
    }
