"""One service's history as server-rendered SVG: small pure functions, no database.

Samples are written only when something changed, so an interval without samples had no calls;
but before the first sample, or after the last successful poll, nothing is known, and that is
drawn as "no data", never as a quiet zero. Markup is built with format_html, which escapes every
value (statuses come from the API and are hostile), and colours come from classes styled in
static/dashboard/service.css: the Content-Security-Policy forbids style attributes.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import NamedTuple, Protocol

from django.utils.functional import Promise
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, gettext_lazy, ngettext, pgettext, pgettext_lazy

from dashboard.statuses import style_for
from dashboard.web.format import compact_duration, count, date, iso, rate

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Range:
    """A choice of the range selector: how far back, in intervals of `step`."""

    key: str
    span: timedelta
    step: timedelta
    tick: timedelta  # x-axis labels at UTC multiples of this
    tick_format: str | Promise  # a Django date format: days are written in the page's language

    @property
    def step_label(self) -> str:
        return compact_duration(int(self.step.total_seconds()))


# A day as the charts write it (Django date formats, translated): "Jan 01" in English.
DAY = pgettext_lazy("chart date format", "M d")
DAY_TIME = pgettext_lazy("chart date format", "M d H:i")

RANGES: dict[str, Range] = {
    r.key: r
    for r in (
        Range("1h", timedelta(hours=1), timedelta(minutes=5), timedelta(minutes=10), "H:i"),
        Range("6h", timedelta(hours=6), timedelta(minutes=5), timedelta(hours=1), "H:i"),
        Range("24h", timedelta(hours=24), timedelta(hours=1), timedelta(hours=3), "H:i"),
        Range("7d", timedelta(days=7), timedelta(hours=6), timedelta(days=1), DAY),
        Range("30d", timedelta(days=30), timedelta(days=1), timedelta(days=5), DAY),
    )
}
DEFAULT_RANGE = "24h"


def default_range(first_seen_at: datetime | None, now: datetime) -> Range:
    """The range a page opens on: the smallest that covers the service's whole history, at most
    DEFAULT_RANGE, so a young service's chart is not a day of grey "no data"."""
    ceiling = RANGES[DEFAULT_RANGE]
    if first_seen_at is None:
        return ceiling
    history = now - first_seen_at
    for range_ in RANGES.values():
        if range_.span >= history or range_ is ceiling:
            return range_
    return ceiling


@dataclass(frozen=True)
class Window:
    """`count` intervals of `step`, aligned to UTC multiples of step; the last holds `now`."""

    start: datetime
    step: timedelta
    count: int
    now: datetime

    @property
    def end(self) -> datetime:
        return self.start + self.count * self.step

    def index(self, at: datetime) -> int | None:
        if at < self.start or at >= self.end:
            return None
        return (at - self.start) // self.step

    def fraction(self, at: datetime) -> float:
        """Where `at` falls, 0 at the start and 1 at the end (clamped)."""
        share = (at - self.start) / (self.end - self.start)
        return min(1.0, max(0.0, share))


def window_for(range_: Range, now: datetime) -> Window:
    # Aligned intervals keep a bar's meaning (and its numbers) stable from one reload to the next.
    end = EPOCH + ((now - EPOCH) // range_.step + 1) * range_.step
    count = range_.span // range_.step
    return Window(start=end - count * range_.step, step=range_.step, count=count, now=now)


class CounterPoint(NamedTuple):
    """A service's lifetime counters as of one sample."""

    at: datetime
    calls: int | None
    failures: int | None


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime
    calls: int | None  # None: no data (not observed then); 0: observed, nothing happened
    failures: int | None
    partial: bool = False  # the interval still in progress
    note: str | Promise = ""  # why there is no data

    @property
    def failure_rate(self) -> float | None:
        """Failures per call, only where there were calls."""
        if not self.calls or self.failures is None:
            return None
        return self.failures / self.calls


def per_interval(
    points: Sequence[CounterPoint],
    window: Window,
    *,
    baseline: CounterPoint | None = None,
    known_until: datetime | None = None,
) -> list[Interval]:
    """Calls and failures per interval of the window, from consecutive counter values.

    `points` are the samples in the window, oldest first; `baseline` is the last sample before
    it. Each delta goes to the interval of the later sample; a counter that went down was reset,
    and that delta is skipped. Intervals before the first known point, or starting after
    `known_until` (the last successful poll), have no data.
    """
    chain = list(points) if baseline is None else [baseline, *points]
    first = chain[0] if chain else None
    known_until = window.now if known_until is None else known_until
    calls = [0] * window.count
    failures = [0] * window.count
    for before, after in pairwise(chain):
        index = window.index(after.at)
        if index is None or _was_reset(before, after):
            continue
        if before.calls is not None and after.calls is not None:
            calls[index] += after.calls - before.calls
        if before.failures is not None and after.failures is not None:
            failures[index] += after.failures - before.failures
    intervals = []
    for index in range(window.count):
        start = window.start + index * window.step
        end = start + window.step
        note: str | Promise = ""
        if first is None or end <= first.at:
            note = BEFORE_FIRST_SAMPLE
        elif start > known_until:
            note = AFTER_LAST_POLL
        intervals.append(
            Interval(
                start=start,
                end=end,
                calls=None if note else calls[index],
                failures=None if note else failures[index],
                partial=start <= window.now < end,
                note=note,
            )
        )
    return intervals


BEFORE_FIRST_SAMPLE = gettext_lazy("before the first sample")
AFTER_LAST_POLL = gettext_lazy("after the last successful poll")


def _was_reset(before: CounterPoint, after: CounterPoint) -> bool:
    return any(
        old is not None and new is not None and new < old
        for old, new in ((before.calls, after.calls), (before.failures, after.failures))
    )


def nice_ticks(top: float, *, minimum: float = 1.0, integer: bool = False) -> list[float]:
    """0 and about four round steps (1, 2 or 5 × 10^n) reaching at least `top`."""
    top = max(top, minimum)
    raw = top / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    if integer:
        step = max(1, round(step))
    steps = math.ceil(top / step - 1e-9)
    return [round(n * step, 10) for n in range(steps + 1)]


def compact(value: float) -> str:
    """'950', '1.5k', '12.3k', '2M': tick labels that fit beside an axis."""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:g}"


def percent(value: float) -> str:
    return rate(value)


def interval_label(interval: Interval) -> str:
    if interval.end - interval.start >= timedelta(days=1):
        text = gettext("%(day)s (UTC day)") % {"day": date(interval.start, str(DAY))}
    else:
        text = gettext("%(start)s–%(end)s UTC") % {
            "start": date(interval.start, str(DAY_TIME)),
            "end": f"{interval.end:%H:%M}",
        }
    return gettext("%(interval)s, so far") % {"interval": text} if interval.partial else text


# How prefs.js writes a time of a hover title again in the reader's zone (see zone_times()).
CLOCK, SECONDS, DAY_CLOCK, ZONE = "clock", "seconds", "daytime", "zone"


def zone_times(*times: tuple[str, datetime | None, str]) -> str:
    """A <title>'s data-times: each (text as shown in UTC, moment, format) in the order the
    title shows them, the zone's name last. prefs.js replaces each text with the moment in the
    reader's zone; the title itself stays in UTC for those who chose UTC."""
    return json.dumps(
        [[text, iso(moment) if moment else None, kind] for text, moment, kind in times]
    )


def interval_times(interval: Interval) -> str:
    """interval_label()'s times; none for a whole day, which is a UTC day whatever the zone."""
    if interval.end - interval.start >= timedelta(days=1):
        return ""
    return zone_times(
        (date(interval.start, str(DAY_TIME)), interval.start, DAY_CLOCK),
        (f"{interval.end:%H:%M}", interval.end, CLOCK),
        ("UTC", None, ZONE),
    )


def calls_title(interval: Interval) -> str:
    label = interval_label(interval)
    if interval.calls is None:
        return _no_data_title(label, interval)
    if interval.failures is None:
        failed = gettext("failures unknown")
    else:
        failed = ngettext("%(count)s failure", "%(count)s failures", interval.failures) % {
            "count": count(interval.failures)
        }
    calls = ngettext("%(count)s call", "%(count)s calls", interval.calls) % {
        "count": count(interval.calls)
    }
    return gettext("%(interval)s: %(calls)s, %(failures)s") % {
        "interval": label,
        "calls": calls,
        "failures": failed,
    }


def rate_title(interval: Interval) -> str:
    label = interval_label(interval)
    if interval.calls is None:
        return _no_data_title(label, interval)
    value = interval.failure_rate
    if value is None:
        return gettext("%(interval)s: no calls, no failure rate") % {"interval": label}
    return ngettext(
        "%(interval)s: %(rate)s failed (%(failures)s of %(calls)s call)",
        "%(interval)s: %(rate)s failed (%(failures)s of %(calls)s calls)",
        interval.calls,
    ) % {
        "interval": label,
        "rate": percent(value),
        "failures": count(interval.failures),
        "calls": count(interval.calls),
    }


def _no_data_title(label: str, interval: Interval) -> str:
    return gettext("%(interval)s: no data (%(why)s)") % {"interval": label, "why": interval.note}


# Chart geometry, in viewBox units; the SVG scales to the width of its box.
WIDTH = 960
LEFT = 64
RIGHT = 16
PLOT_WIDTH = WIDTH - LEFT - RIGHT
BAR_HEIGHT = 210  # whole bar chart
BAR_TOP = 24  # room for the axis title
BAR_BOTTOM = 24  # room for the time labels
CHAR_WIDTH = 6.4  # of an 11-unit label, for "does it fit" guesses


def text_width(text: str) -> float:
    """About how wide a label is: CJK characters take two columns."""
    wide = sum(unicodedata.east_asian_width(ch) in "WF" for ch in text)
    return (len(text) + wide) * CHAR_WIDTH


def _n(value: float) -> str:
    """A coordinate: one decimal is far finer than a pixel."""
    return f"{value:.1f}".removesuffix(".0")


def _svg(kind: str, height: int, label: str, body: SafeString) -> SafeString:
    return format_html(
        '<svg class="chart chart-{}" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}</svg>',
        kind,
        WIDTH,
        height,
        label,
        label,
        body,
    )


def _x(window: Window, at: datetime) -> float:
    return LEFT + window.fraction(at) * PLOT_WIDTH


def _time_ticks(window: Window, range_: Range) -> Iterator[datetime]:
    first = EPOCH + -((EPOCH - window.start) // range_.tick) * range_.tick
    moment = first
    while moment < window.end:
        yield moment
        moment += range_.tick


def _x_axis(window: Window, range_: Range, baseline_y: float, grid_top: float) -> SafeString:
    parts = []
    for moment in _time_ticks(window, range_):
        x = _x(window, moment)
        if x > WIDTH - RIGHT - 40:
            continue  # leave room for the "UTC" caption
        parts.append(
            format_html(
                '<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/>'
                '<text class="tick" x="{}" y="{}" text-anchor="middle" data-tick="{}" '
                'data-tick-format="{}">{}</text>',
                _n(x),
                _n(grid_top),
                _n(x),
                _n(baseline_y),
                _n(x),
                _n(baseline_y + 16),
                # The label in UTC; prefs.js writes it again in the reader's zone.
                iso(moment),
                "day" if range_.tick_format == DAY else "clock",
                date(moment, str(range_.tick_format)),
            )
        )
    parts.append(
        format_html(
            '<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"/>'
            '<text class="tick" x="{}" y="{}" text-anchor="end" data-zone-caption>UTC</text>',
            LEFT,
            _n(baseline_y),
            WIDTH - RIGHT,
            _n(baseline_y),
            WIDTH - RIGHT,
            _n(baseline_y + 16),
        )
    )
    return _join(parts)


def _y_axis(ticks: list[float], caption: str, unit: str) -> SafeString:
    parts = [
        format_html(
            '<text class="axis-title" x="{}" y="{}" text-anchor="start">{}</text>',
            LEFT,
            14,
            caption,
        )
    ]
    for value in ticks:
        y = _y(value, ticks[-1])
        parts.append(
            format_html(
                '<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/>'
                '<text class="tick" x="{}" y="{}" text-anchor="end">{}{}</text>',
                LEFT,
                _n(y),
                WIDTH - RIGHT,
                _n(y),
                LEFT - 6,
                _n(y + 4),
                compact(value),
                unit,
            )
        )
    return _join(parts)


def _y(value: float, top: float) -> float:
    plot = BAR_HEIGHT - BAR_TOP - BAR_BOTTOM
    return BAR_TOP + plot * (1 - min(value, top) / top)


def _slot(window: Window, index: int) -> tuple[float, float]:
    """x and width of the bar of interval `index`, with a gap either side."""
    slot = PLOT_WIDTH / window.count
    return LEFT + index * slot + slot * 0.1, slot * 0.8


def _column(
    window: Window,
    index: int,
    title: str,
    bars: list[tuple[str, float]],
    top: float,
    times: str,
) -> SafeString:
    """One interval: a full-height hit area carrying the hover title, then its bars."""
    x, width = _slot(window, index)
    slot = PLOT_WIDTH / window.count
    hit = format_html(
        '<rect class="hit" x="{}" y="{}" width="{}" height="{}"/>',
        _n(LEFT + index * slot),
        BAR_TOP,
        _n(slot),
        BAR_HEIGHT - BAR_TOP - BAR_BOTTOM,
    )
    shapes = [
        format_html(
            '<rect class="bar {}" x="{}" y="{}" width="{}" height="{}"/>',
            css,
            _n(x),
            _n(_y(value, top)),
            _n(width),
            _n(_y(0, top) - _y(value, top)),
        )
        for css, value in bars
    ]
    return format_html('<g class="column">{}{}{}</g>', _title(title, times), hit, _join(shapes))


def _title(text: str, times: str) -> SafeString:
    """A hover title; with data-times, prefs.js writes its times in the reader's zone."""
    if not times:
        return format_html("<title>{}</title>", text)
    return format_html('<title data-times="{}">{}</title>', times, text)


def _no_data(window: Window, index: int, title: str, times: str) -> SafeString:
    slot = PLOT_WIDTH / window.count
    return format_html(
        '<g class="column column-nodata">{}'
        '<rect class="nodata" x="{}" y="{}" width="{}" height="{}"/></g>',
        _title(title, times),
        _n(LEFT + index * slot),
        BAR_TOP,
        _n(slot),
        BAR_HEIGHT - BAR_TOP - BAR_BOTTOM,
    )


def _empty_note(text: str) -> SafeString:
    return format_html(
        '<text class="empty-note" x="{}" y="{}" text-anchor="middle">{}</text>',
        LEFT + PLOT_WIDTH / 2,
        (BAR_HEIGHT - BAR_BOTTOM + BAR_TOP) / 2,
        text,
    )


def calls_chart(
    intervals: Sequence[Interval], window: Window, range_: Range, *, label: str
) -> SafeString:
    """Calls per interval as bars, with that interval's failures drawn over their foot."""
    top = max((max(i.calls or 0, i.failures or 0) for i in intervals), default=0)
    ticks = nice_ticks(top, integer=True)
    columns = []
    for index, interval in enumerate(intervals):
        if interval.calls is None:
            columns.append(_no_data(window, index, calls_title(interval), interval_times(interval)))
            continue
        bars = [("bar-calls", interval.calls), ("bar-failures", interval.failures or 0)]
        columns.append(
            _column(window, index, calls_title(interval), bars, ticks[-1], interval_times(interval))
        )
    body = [
        _y_axis(ticks, gettext("calls per %(step)s") % {"step": range_.step_label}, ""),
        _x_axis(window, range_, BAR_HEIGHT - BAR_BOTTOM, BAR_TOP),
        format_html('<g class="columns">{}</g>', _join(columns)),
    ]
    if all(i.calls is None for i in intervals):
        body.append(_empty_note(gettext("No data in this range")))
    return _svg("calls", BAR_HEIGHT, label, _join(body))


def failure_rate_chart(
    intervals: Sequence[Interval], window: Window, range_: Range, *, label: str
) -> SafeString:
    """Failed calls per call in each interval, in %, only where there were calls."""
    rates = [i.failure_rate for i in intervals]
    top = max((r for r in rates if r is not None), default=0) * 100
    ticks = nice_ticks(top)
    columns = []
    for index, interval in enumerate(intervals):
        title = rate_title(interval)
        if interval.calls is None:
            columns.append(_no_data(window, index, title, interval_times(interval)))
            continue
        rate = interval.failure_rate
        bars = [] if rate is None else [("bar-rate", rate * 100)]
        columns.append(_column(window, index, title, bars, ticks[-1], interval_times(interval)))
    body = [
        _y_axis(ticks, gettext("failed calls per %(step)s, %%") % {"step": range_.step_label}, "%"),
        _x_axis(window, range_, BAR_HEIGHT - BAR_BOTTOM, BAR_TOP),
        format_html('<g class="columns">{}</g>', _join(columns)),
    ]
    if all(r is None for r in rates):
        body.append(_empty_note(gettext("No calls in this range")))
    return _svg("rate", BAR_HEIGHT, label, _join(body))


class ChangeLike(Protocol):
    """What the timeline needs of a StatusChange row."""

    at: datetime
    previous_poll_at: datetime | None
    from_status: str
    to_status: str


@dataclass(frozen=True)
class Segment:
    """A stretch of the timeline in one status; status "" when the service was not listed."""

    status: str
    start: datetime
    end: datetime
    # The change into this status happened after `changed_after` (the poll before) and by
    # `changed_by` (the poll that saw it); both None when it began before the range.
    changed_after: datetime | None = None
    changed_by: datetime | None = None
    note: str | Promise = ""  # for status "": why nothing is known

    @property
    def tone(self) -> str:
        return style_for(self.status).tone if self.status else "none"

    @property
    def label(self) -> str:
        return str(style_for(self.status).label if self.status else self.note)


OLDER_NOT_DRAWN = gettext_lazy("older changes not drawn")
NOT_OBSERVED_YET = gettext_lazy("not observed yet")
GONE = gettext_lazy("gone: no longer listed")


def status_segments(
    changes: Sequence[ChangeLike],
    window: Window,
    *,
    current_status: str,
    first_seen_at: datetime,
    gone_at: datetime | None = None,
    earlier_unknown: bool = False,
) -> list[Segment]:
    """The service's status from the window's start to now, from its status changes (oldest
    first, all within the window). `earlier_unknown`: older changes in the window were left out,
    so the stretch before the first one given is not known."""
    end = window.now
    status = current_status
    if changes:
        status = "" if earlier_unknown else changes[0].from_status
    note = OLDER_NOT_DRAWN if earlier_unknown else NOT_OBSERVED_YET
    segments: list[Segment] = []
    cursor = window.start
    if first_seen_at > window.start and not earlier_unknown:
        # Seen first in the range (by the first poll, which records no change): nothing before.
        seen = min(first_seen_at, end)
        segments.append(Segment("", window.start, seen, note=NOT_OBSERVED_YET))
        cursor = seen
    current = Segment(status, cursor, cursor, note=note)
    for change in changes:
        if change.at > current.start:
            segments.append(_until(current, change.at))
        current = Segment(
            change.to_status,
            start=change.at,
            end=change.at,
            changed_after=change.previous_poll_at,
            changed_by=change.at,
        )
    if gone_at is not None and gone_at < end:
        if gone_at > current.start:
            segments.append(_until(current, gone_at))
        current = Segment("", max(gone_at, window.start), end, note=GONE)
    if end > current.start:
        segments.append(_until(current, end))
    return segments


def _until(segment: Segment, end: datetime) -> Segment:
    return replace(segment, end=end)


def segment_title(segment: Segment, window: Window, range_: Range) -> str:
    """'running from 10:02 to 10:45 UTC (observed between polls at 10:01:30 and 10:02:00)'."""
    moment = str(DAY_TIME) if range_.span > timedelta(days=1) else "H:i"
    start = date(segment.start, moment)
    if segment.changed_by is None and segment.start <= window.start:
        since = pgettext("timeline", "before %(time)s") % {"time": start}
    else:
        since = start
    if segment.end >= window.now:
        text = gettext("%(status)s from %(start)s UTC to now") % {
            "status": segment.label,
            "start": since,
        }
    else:
        text = gettext("%(status)s from %(start)s to %(end)s UTC") % {
            "status": segment.label,
            "start": since,
            "end": date(segment.end, moment),
        }
    if segment.changed_by is not None and segment.changed_after is not None:
        text += gettext(" (observed between polls at %(after)s and %(by)s)") % {
            "after": f"{segment.changed_after:%H:%M:%S}",
            "by": f"{segment.changed_by:%H:%M:%S}",
        }
    elif segment.changed_by is not None:
        text += gettext(" (observed at the poll of %(time)s)") % {
            "time": f"{segment.changed_by:%H:%M:%S}"
        }
    return text


def segment_times(segment: Segment, window: Window, range_: Range) -> str:
    """segment_title()'s times, in the order it shows them."""
    kind, moment = (DAY_CLOCK, str(DAY_TIME)) if range_.span > timedelta(days=1) else (CLOCK, "H:i")
    times = [(date(segment.start, moment), segment.start, kind)]
    if segment.end < window.now:
        times.append((date(segment.end, moment), segment.end, kind))
    times.append(("UTC", None, ZONE))
    for at in (segment.changed_after, segment.changed_by):
        if segment.changed_by is not None and at is not None:
            times.append((f"{at:%H:%M:%S}", at, SECONDS))
    return zone_times(*times)


TIMELINE_HEIGHT = 64
TIMELINE_TOP = 6
TIMELINE_BAR = 30


def timeline_chart(
    segments: Sequence[Segment], window: Window, range_: Range, *, label: str
) -> SafeString:
    """Coloured stretches per status (class per tone), each titled with when it was observed.

    A change is only known to have happened between two polls: that span is drawn hatched over
    the boundary."""
    parts = []
    for segment in segments:
        x1, x2 = _x(window, segment.start), _x(window, segment.end)
        text = ""
        if x2 - x1 > text_width(segment.label) + 10:
            text = format_html(
                '<text class="seg-label" x="{}" y="{}">{}</text>',
                _n(x1 + 5),
                _n(TIMELINE_TOP + TIMELINE_BAR / 2 + 4),
                segment.label,
            )
        parts.append(
            format_html(
                '<g class="seg seg-{}">{}<rect x="{}" y="{}" width="{}" height="{}"/>{}</g>',
                segment.tone,
                _title(
                    segment_title(segment, window, range_),
                    segment_times(segment, window, range_),
                ),
                _n(x1),
                TIMELINE_TOP,
                _n(max(x2 - x1, 0)),
                TIMELINE_BAR,
                text,
            )
        )
    for before, after in pairwise(segments):
        if after.changed_after is None or after.changed_by is None:
            continue
        x1, x2 = _x(window, after.changed_after), _x(window, after.changed_by)
        first, second = f"{after.changed_after:%H:%M:%S}", f"{after.changed_by:%H:%M:%S}"
        title = gettext(
            "%(before)s → %(after)s: changed between polls at %(first)s and %(second)s"
        ) % {"before": before.label, "after": after.label, "first": first, "second": second}
        times = zone_times(
            (first, after.changed_after, SECONDS), (second, after.changed_by, SECONDS)
        )
        parts.append(
            format_html(
                '<g class="seg-window">{}<rect x="{}" y="{}" width="{}" height="{}"/></g>',
                _title(title, times),
                _n(x1),
                TIMELINE_TOP,
                _n(max(x2 - x1, 1)),
                TIMELINE_BAR,
            )
        )
    body = [
        _x_axis(window, range_, TIMELINE_TOP + TIMELINE_BAR + 2, TIMELINE_TOP),
        format_html('<g class="segments">{}</g>', _join(parts)),
    ]
    return _svg("timeline", TIMELINE_HEIGHT, label, _join(body))


def _join(parts: Sequence[SafeString]) -> SafeString:
    return format_html_join("", "{}", ((part,) for part in parts))
