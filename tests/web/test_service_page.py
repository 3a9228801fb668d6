"""The service page: charts, timeline and changes from the history the poller writes.

Driven through the simulator over real HTTP; the poller stamps samples with timezone.now(), so
these tests make Django's clock follow the simulator's.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from chromium import in_chromium
from django.test import RequestFactory

from dashboard.ingest.poll import poll_source
from dashboard.models import PollRun, Service, ServiceSample, StatusChange
from dashboard.web import charts, service_page
from dashboard.web.charts import CounterPoint, Interval, Segment, Window

HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_STATUS = "<b>boom</b>\u202e"
NOW = datetime(2026, 1, 3, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def sim_time(monkeypatch, clock):
    """Django's now() follows the simulator's clock, so samples land where polls happened."""
    monkeypatch.setattr("django.utils.timezone.now", lambda: _at(clock()))
    return clock


@pytest.fixture
def fixed_time(monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)
    return NOW


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def get(user, service_id: str, **query: str):
    request = RequestFactory().get(f"/services/{service_id}/", query)
    request.user = user
    return service_page.service_detail(request, service_id)


def body_of(response) -> str:
    return response.content.decode()


def drive(source, clock, fleet, *, polls: int, every: int) -> dict[datetime, dict[str, dict]]:
    """Poll, advance the clock, poll…: what the fleet reported at each poll, by poll time."""
    seen = {}
    for n in range(polls):
        if n:
            clock.advance(every)
        run = poll_source(source)
        assert run.ok, run.error_message
        seen[_at(clock())] = {item["service_id"]: item for item in fleet.items(clock())}
    source.refresh_from_db()
    return seen


def interval_data(service: Service, range_key: str) -> tuple[Window, list[Interval]]:
    """What the page charts, through the page's own helpers."""
    from django.utils import timezone

    window = charts.window_for(charts.RANGES[range_key], timezone.now())
    return window, service_page.chart_intervals(service, window)


def test_it_charts_the_counter_differences_the_fleet_reported(
    sim_time, source, clock, fleet, operator
):
    # Polls every minute for 29 minutes: the 1 h range has 5-minute intervals, 6 before the
    # first poll (no data) and 6 holding polls.
    seen = drive(source, clock, fleet, polls=30, every=60)
    times = sorted(seen)
    first, last = seen[times[0]], seen[times[-1]]
    busy = max(
        (sid for sid in first if sid in last),
        key=lambda sid: last[sid]["invocation_times"] - first[sid]["invocation_times"],
    )
    service = Service.objects.get(service_id=busy)
    window, intervals = interval_data(service, "1h")

    assert window.start == datetime(2025, 12, 31, 23, 30, tzinfo=UTC)
    assert window.count == 12
    assert [i.calls for i in intervals[:6]] == [None] * 6
    for interval in intervals[6:]:
        inside = [t for t in times if interval.start <= t < interval.end]
        before = [t for t in times if t < interval.start] or inside[:1]
        then, now = seen[max(before)][busy], seen[max(inside)][busy]
        assert interval.calls == now["invocation_times"] - then["invocation_times"]
        assert interval.failures == now["failed_times"] - then["failed_times"]
    total = sum(i.calls for i in intervals if i.calls)
    assert total == last[busy]["invocation_times"] - first[busy]["invocation_times"] > 0

    body = untagged(body_of(get(operator, busy, range="1h")))
    first_with_data = intervals[6]
    assert (
        f"<title>Jan 01 00:00–00:05 UTC: {first_with_data.calls:,} calls, "
        f"{first_with_data.failures:,} failure" in body
    )
    for interval in intervals:
        assert f"<title>{charts.calls_title(interval)}</title>" in body
        assert f"<title>{charts.rate_title(interval)}</title>" in body
    assert "<title>Dec 31 23:30–23:35 UTC: no data (before the first sample)</title>" in body
    assert "Jan 01 00:25–00:30 UTC, so far" in body


def test_it_draws_the_timeline_from_the_status_changes_in_order(
    sim_time, source, clock, fleet, operator
):
    drive(source, clock, fleet, polls=72, every=300)  # six hours, a poll every 5 minutes
    busiest = (
        Service.objects.filter(status_changes__isnull=False)
        .exclude(status_changes__from_status="")
        .order_by()
        .values_list("pk", flat=True)
    )
    counts: dict[int, int] = {}
    for pk in busiest:
        counts[pk] = counts.get(pk, 0) + 1
    service = Service.objects.get(pk=max(counts, key=counts.get))
    changes = list(service.status_changes.order_by("at", "id"))
    assert len(changes) >= 3, "the simulated fleet has flaky services"

    body = untagged(body_of(get(operator, service.service_id, range="6h")))
    titles = re.findall(r'<g class="seg seg-[a-z]+"><title>([^<]*)</title>', body)
    window = charts.window_for(charts.RANGES["6h"], _at(clock()))
    segments = charts.status_segments(
        changes,
        window,
        current_status=service.status,
        first_seen_at=service.first_seen_at,
        gone_at=service.gone_at,
    )
    observed = [s for s in segments if s.status]
    assert [s.status for s in observed] == [changes[0].from_status] + [c.to_status for c in changes]
    assert [s.start for s in observed[1:]] == [c.at for c in changes]
    assert [s.end for s in observed[:-1]] == [c.at for c in changes]
    assert observed[-1].end == _at(clock())
    assert titles == [charts.segment_title(s, window, charts.RANGES["6h"]) for s in segments]
    for change in changes:
        label = charts.style_for(change.to_status).label
        start = change.at.strftime("%H:%M")
        between = (
            f"(observed between polls at {change.previous_poll_at:%H:%M:%S} "
            f"and {change.at:%H:%M:%S})"
        )
        assert any(t.startswith(f"{label} from {start} ") and between in t for t in titles)
    # The list: newest first, each one "between" its two polls.
    listed = re.findall(r'<li data-change-id="(\d+)">', body)
    assert listed == [str(c.pk) for c in reversed(changes)]


def test_it_lists_changes_newest_first_and_caps_the_list(fixed_time, make_service, operator):
    service = make_service("capped", first_seen_at=NOW - timedelta(days=20))
    run = PollRun.objects.create(source=service.source, started_at=NOW, ok=True)
    StatusChange.objects.bulk_create(
        StatusChange(
            service=service,
            source=service.source,
            poll_run=run,
            at=NOW - timedelta(minutes=250 - n),
            previous_poll_at=NOW - timedelta(minutes=250 - n, seconds=30),
            from_status="running" if n % 2 else "concerning",
            to_status="concerning" if n % 2 else "running",
        )
        for n in range(250)
    )
    body = body_of(get(operator, service.service_id))
    assert len(re.findall(r"<li data-change-id=", body)) == service_page.CHANGES_LISTED
    assert "Showing the 200 most recent of 250 changes in this range" in body
    newest = StatusChange.objects.filter(service=service).order_by("-at").first()
    assert re.search(r'<li data-change-id="(\d+)">', body).group(1) == str(newest.pk)


def test_it_shows_every_field_of_the_snapshot_and_the_raw_item(polled, operator):
    service = Service.objects.filter(infer_type="batch").first() or Service.objects.first()
    body = body_of(get(operator, service.service_id))
    for name in [*service_page.API_FIELDS, *service_page.DERIVED_FIELDS]:
        assert f"<dt><code>{name}</code></dt>" in body
    assert '<details class="raw">' in body
    assert f"&quot;service_id&quot;: &quot;{service.service_id}&quot;" in body
    assert f'<code>{service.service_id}</code><button type="button" class="copy"' in body
    assert f"<dd>{service.source.name}</dd>" in body


def test_it_answers_404_for_an_unknown_service(db, operator):
    response = get(operator, "no-such-service")
    assert response.status_code == 404
    assert "No service with id &#x27;no-such-service&#x27; has been seen." in body_of(response)


def test_it_answers_404_for_a_known_id_in_another_source(make_service, operator):
    service = make_service("elsewhere")
    assert get(operator, service.service_id, source="other").status_code == 404
    assert get(operator, service.service_id, source="fixture").status_code == 200


def test_it_answers_400_for_an_unknown_range(make_service, operator):
    service = make_service("ranged")
    response = get(operator, service.service_id, range="forever")
    assert response.status_code == 400
    assert "range must be one of 1h, 6h, 24h, 7d, 30d, not &#x27;forever&#x27;." in body_of(
        response
    )
    hostile = get(operator, service.service_id, range=HOSTILE_NAME)
    assert hostile.status_code == 400
    assert HOSTILE_NAME not in body_of(hostile)


def test_it_keeps_the_source_in_the_range_links(make_service, operator):
    service = make_service("linked")
    body = body_of(get(operator, service.service_id, source="fixture", range="7d"))
    for key in charts.RANGES:
        assert f'href="?range={key}&amp;source=fixture"' in body
    assert re.search(r'class="chip chip-on" href="\?range=7d&amp;source=fixture"', body)
    assert '<a href="/">← All services</a>' in body


def test_it_offers_the_same_id_in_other_sources(make_service, operator):
    from dashboard.models import Source

    first = make_service("twin")
    other = Source.objects.create(name="other", endpoint="http://127.0.0.1:9", project_id="p")
    twin = make_service("twin elsewhere", source=other)
    Service.objects.filter(pk=twin.pk).update(service_id=first.service_id)
    body = body_of(get(operator, first.service_id))
    assert '<bdi class="service-name">twin</bdi>' in body  # "fixture" sorts first
    assert 'href="?source=other"' in body
    body = body_of(get(operator, first.service_id, source="other"))
    assert '<bdi class="service-name">twin elsewhere</bdi>' in body


class _Markup(HTMLParser):
    """Every element, attribute and text of a page, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.texts: list[str] = []
        self.inside: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.inside.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        while self.inside and self.inside.pop() != tag:
            pass

    def handle_data(self, data):
        self.texts.append(data)
        assert not (self.inside and self.inside[-1] == "script" and data.strip()), data


def _hostile_service(make_service):
    raw = {"service_id": "x", "service_name": HOSTILE_NAME, "status": HOSTILE_STATUS}
    service = make_service(
        HOSTILE_NAME,
        HOSTILE_STATUS,
        description=f"{HOSTILE_NAME} described",
        owner='" onmouseover="alert(1)',
        infer_type="<img src=x>",
        raw=raw,
        first_seen_at=NOW - timedelta(days=2),
        status_changed_at=NOW - timedelta(hours=2),
    )
    run = PollRun.objects.create(source=service.source, started_at=NOW, ok=True)
    ServiceSample.objects.create(
        service=service,
        poll_run=run,
        at=NOW - timedelta(hours=3),
        status="running",
        invocation_times=10,
        failed_times=0,
    )
    StatusChange.objects.create(
        service=service,
        source=service.source,
        poll_run=run,
        at=NOW - timedelta(hours=2),
        previous_poll_at=NOW - timedelta(hours=2, seconds=30),
        from_status="running",
        to_status=HOSTILE_STATUS,
    )
    return service


def test_it_shows_hostile_strings_only_escaped(fixed_time, make_service, operator):
    service = _hostile_service(make_service)
    body = body_of(get(operator, service.service_id))
    for raw in (HOSTILE_NAME, "<b>boom</b>", "<img src=x>", '" onmouseover="'):
        assert raw not in body
    escaped_name = "&lt;script&gt;alert(1)&lt;/script&gt;"
    svgs = re.findall(r"<svg .*?</svg>", body, re.S)
    assert len(svgs) == 3
    assert all(escaped_name in svg for svg in svgs)  # each chart's label names the service
    timeline = svgs[2]
    assert "unknown: &lt;b&gt;boom&lt;/b&gt;" in timeline
    raw_json = re.search(r"<pre><code>(.*?)</code></pre>", body, re.S).group(1)
    assert f"&quot;service_name&quot;: &quot;{escaped_name}&quot;" in raw_json
    assert "\\u202e" in raw_json and "\u202e" not in raw_json  # the override is made visible

    markup = _Markup()
    markup.feed(body)
    for tag, attrs in markup.tags:
        assert tag not in ("style", "iframe", "object", "img"), tag
        assert "style" not in attrs, (tag, attrs)
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        if tag == "script":
            assert attrs.get("src", "").startswith("/static/"), attrs
    assert HOSTILE_NAME in markup.texts  # shown as text, exactly as sent


def test_it_reads_a_constant_number_of_queries(
    fixed_time, make_service, operator, django_assert_max_num_queries
):
    service = make_service("busy", first_seen_at=NOW - timedelta(days=40))
    run = PollRun.objects.create(source=service.source, started_at=NOW, ok=True)

    def grow(samples: int, changes: int) -> None:
        ServiceSample.objects.filter(service=service).delete()
        StatusChange.objects.filter(service=service).delete()
        ServiceSample.objects.bulk_create(
            ServiceSample(
                service=service,
                poll_run=run,
                at=NOW - timedelta(days=29) + n * timedelta(days=29) / samples,
                status="running",
                invocation_times=100 * n,
                failed_times=n,
            )
            for n in range(samples)
        )
        StatusChange.objects.bulk_create(
            StatusChange(
                service=service,
                source=service.source,
                poll_run=run,
                at=NOW - timedelta(hours=n + 1),
                from_status="running",
                to_status="concerning",
            )
            for n in range(changes)
        )

    grow(5, 2)
    with django_assert_max_num_queries(8) as small:
        assert get(operator, service.service_id, range="30d").status_code == 200
    grow(500, 300)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = get(operator, service.service_id, range="30d")
    assert response.status_code == 200
    assert body_of(response).count('<g class="column">') == 2 * 30  # calls and rate charts


def test_it_goes_through_every_middleware_with_the_csp(fixed_time, make_service, client):
    service = make_service("wired")
    response = client.get(f"/services/{service.service_id}/?range=1h")
    assert response.status_code == 200
    assert "style-src 'self'" in response["Content-Security-Policy"]
    assert client.post(f"/services/{service.service_id}/").status_code == 405


# Pure chart functions: no database.

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def window_1h(now: datetime = T0 + timedelta(minutes=59)) -> Window:
    return charts.window_for(charts.RANGES["1h"], now)


def point(minutes: float, calls: int | None, failures: int | None = 0) -> CounterPoint:
    return CounterPoint(T0 + timedelta(minutes=minutes), calls, failures)


def test_it_aligns_windows_to_their_intervals():
    window = window_1h(T0 + timedelta(minutes=59, seconds=59))
    assert (window.start, window.end, window.count) == (T0, T0 + timedelta(hours=1), 12)
    assert charts.window_for(charts.RANGES["1h"], T0).start == T0 - timedelta(minutes=55)
    month = charts.window_for(charts.RANGES["30d"], T0 + timedelta(hours=13))
    assert (month.start, month.count) == (T0 - timedelta(days=29), 30)
    week = charts.window_for(charts.RANGES["7d"], T0 + timedelta(hours=13))
    assert (week.end, week.count) == (T0 + timedelta(hours=18), 28)


def test_it_assigns_each_delta_to_the_interval_of_the_later_sample():
    points = [point(1, 100, 1), point(4, 130, 2), point(6, 150, 2), point(33, 400, 12)]
    intervals = charts.per_interval(points, window_1h())
    assert [i.calls for i in intervals] == [30, 20, 0, 0, 0, 0, 250, 0, 0, 0, 0, 0]
    assert [i.failures for i in intervals] == [1, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0]
    assert intervals[6].failure_rate == pytest.approx(10 / 250)
    assert intervals[2].failure_rate is None  # no calls, no rate
    assert [i.partial for i in intervals] == [False] * 11 + [True]


def test_it_skips_a_delta_where_a_counter_was_reset():
    points = [point(1, 500, 9), point(7, 20, 1), point(12, 70, 3)]
    intervals = charts.per_interval(points, window_1h())
    assert [i.calls for i in intervals[:3]] == [0, 0, 50]
    assert [i.failures for i in intervals[:3]] == [0, 0, 2]


def test_it_skips_a_delta_where_a_counter_is_unknown():
    points = [point(1, 100, None), point(7, 150, 3), point(12, None, 5), point(13, 170, 6)]
    intervals = charts.per_interval(points, window_1h())
    assert [i.calls for i in intervals[:3]] == [0, 50, 0]
    assert [i.failures for i in intervals[:3]] == [0, 0, 3]


def test_it_shows_no_data_before_the_first_sample_and_zero_in_gaps():
    points = [point(22, 100), point(24, 110), point(52, 200)]
    intervals = charts.per_interval(points, window_1h())
    assert [i.calls for i in intervals] == [None] * 4 + [10, 0, 0, 0, 0, 0, 90, 0]
    assert intervals[0].note == "before the first sample"
    assert "no data (before the first sample)" in charts.calls_title(intervals[0])


def test_it_counts_from_the_baseline_before_the_range():
    baseline = CounterPoint(T0 - timedelta(days=3), 50, 5)
    intervals = charts.per_interval([point(8, 80, 6)], window_1h(), baseline=baseline)
    assert [i.calls for i in intervals] == [0, 30] + [0] * 10
    assert [i.failures for i in intervals] == [0, 1] + [0] * 10


def test_it_draws_a_range_without_samples():
    baseline = CounterPoint(T0 - timedelta(days=3), 50, 5)
    idle = charts.per_interval([], window_1h(), baseline=baseline)
    assert [i.calls for i in idle] == [0] * 12
    unknown = charts.per_interval([], window_1h())
    assert [i.calls for i in unknown] == [None] * 12
    svg = charts.calls_chart(unknown, window_1h(), charts.RANGES["1h"], label="x")
    assert "No data in this range" in svg
    assert svg.count('class="nodata"') == 12
    rate = charts.failure_rate_chart(idle, window_1h(), charts.RANGES["1h"], label="x")
    assert "No calls in this range" in rate
    assert 'class="bar bar-rate"' not in rate


def test_it_draws_one_sample_as_data_from_then_on():
    intervals = charts.per_interval([point(31, 1000, 10)], window_1h())
    assert [i.calls for i in intervals] == [None] * 6 + [0] * 6
    svg = untagged(charts.calls_chart(intervals, window_1h(), charts.RANGES["1h"], label="one"))
    assert svg.count('<g class="column column-nodata">') == 6
    assert svg.count('<g class="column">') == 6
    assert "<title>Jan 01 00:30–00:35 UTC: 0 calls, 0 failures</title>" in svg


def test_it_knows_nothing_after_the_last_successful_poll():
    points = [point(1, 100), point(7, 150)]
    intervals = charts.per_interval(points, window_1h(), known_until=T0 + timedelta(minutes=21))
    assert [i.calls for i in intervals] == [0, 50, 0, 0, 0] + [None] * 7
    assert intervals[5].note == "after the last successful poll"


def test_it_scales_bars_to_round_ticks():
    assert charts.nice_ticks(0, integer=True) == [0, 1]
    assert charts.nice_ticks(3, integer=True) == [0, 1, 2, 3]
    assert charts.nice_ticks(730, integer=True) == [0, 200, 400, 600, 800]
    assert charts.nice_ticks(0.3) == [0, 0.5, 1.0]
    assert charts.nice_ticks(12.5) == [0, 5, 10, 15]
    assert [charts.compact(v) for v in (0, 950, 1500, 12_345, 2_000_000)] == [
        "0",
        "950",
        "1.5k",
        "12.3k",
        "2M",
    ]
    intervals = charts.per_interval([point(1, 0, 0), point(7, 730, 73)], window_1h())
    tagged = charts.calls_chart(intervals, window_1h(), charts.RANGES["1h"], label="scaled")
    svg = untagged(tagged)
    assert ">800</text>" in svg and ">calls per 5 min</text>" in svg
    assert "<title>Jan 01 00:05–00:10 UTC: 730 calls, 73 failures</title>" in svg
    assert ">00:10</text>" in svg and ">UTC</text>" in svg
    rate = untagged(
        charts.failure_rate_chart(intervals, window_1h(), charts.RANGES["1h"], label="r")
    )
    assert "<title>Jan 01 00:05–00:10 UTC: 10.00% failed (73 of 730 calls)</title>" in rate
    assert ">10%</text>" in rate
    assert "style=" not in svg + rate
    # Each hover title lists its times for prefs.js to write in the reader's zone.
    assert times_of(tagged, "Jan 01 00:05–00:10 UTC: 730 calls") == [
        ["Jan 01 00:05", "2026-01-01T00:05:00Z", "daytime"],
        ["00:10", "2026-01-01T00:10:00Z", "clock"],
        ["UTC", None, "zone"],
    ]


def test_a_whole_days_bar_keeps_its_utc_day_whatever_the_zone():
    day = charts.Interval(T0, T0 + timedelta(days=1), calls=5, failures=0, partial=False)
    assert "(UTC day)" in charts.calls_title(day) and charts.interval_times(day) == ""


def untagged(svg: str) -> str:
    """The SVG with its titles' data-times left out."""
    return re.sub(r'<title data-times="[^"]*">', "<title>", svg)


def times_of(svg: str, title_starts: str) -> list:
    """The data-times of the title that starts with `title_starts`."""
    found = re.search(rf'<title data-times="([^"]*)">{re.escape(title_starts)}', svg)
    return json.loads(html.unescape(found[1]))


class Change:
    def __init__(self, minutes: float, from_status: str, to_status: str, gap: float = 0.5):
        self.at = T0 + timedelta(minutes=minutes)
        self.previous_poll_at = self.at - timedelta(minutes=gap)
        self.from_status, self.to_status = from_status, to_status


def test_it_splits_the_timeline_at_each_change():
    window = window_1h()
    changes = [Change(10, "running", "concerning"), Change(25, "concerning", "failed")]
    segments = charts.status_segments(
        changes, window, current_status="failed", first_seen_at=T0 - timedelta(days=1)
    )
    assert [(s.status, s.start, s.end) for s in segments] == [
        ("running", T0, changes[0].at),
        ("concerning", changes[0].at, changes[1].at),
        ("failed", changes[1].at, window.now),
    ]
    titles = [charts.segment_title(s, window, charts.RANGES["1h"]) for s in segments]
    assert titles == [
        "running from before 00:00 to 00:10 UTC",
        "concerning from 00:10 to 00:25 UTC (observed between polls at 00:09:30 and 00:10:00)",
        "failed from 00:25 UTC to now (observed between polls at 00:24:30 and 00:25:00)",
    ]
    tagged = charts.timeline_chart(segments, window, charts.RANGES["1h"], label="t")
    assert times_of(tagged, "concerning from") == [
        ["00:10", "2026-01-01T00:10:00Z", "clock"],
        ["00:25", "2026-01-01T00:25:00Z", "clock"],
        ["UTC", None, "zone"],
        ["00:09:30", "2026-01-01T00:09:30Z", "seconds"],
        ["00:10:00", "2026-01-01T00:10:00Z", "seconds"],
    ]
    svg = untagged(tagged)
    assert re.findall(r'<g class="seg (seg-[a-z]+)">', svg) == ["seg-ok", "seg-warn", "seg-bad"]
    assert svg.count('<g class="seg-window">') == 2
    assert "<title>running → concerning: changed between polls at 00:09:30 and 00:10:00" in svg


def test_it_keeps_the_current_status_when_nothing_changed():
    segments = charts.status_segments(
        [], window_1h(), current_status="stopped", first_seen_at=T0 - timedelta(days=1)
    )
    assert [(s.status, s.start, s.end) for s in segments] == [("stopped", T0, window_1h().now)]


def test_it_marks_the_time_before_a_service_was_first_seen_and_after_it_went():
    window = window_1h()
    appeared = Change(12, "", "deploying")
    segments = charts.status_segments(
        [appeared, Change(20, "deploying", "running")],
        window,
        current_status="running",
        first_seen_at=appeared.at,
        gone_at=T0 + timedelta(minutes=40),
    )
    assert [(s.status, s.start, s.end) for s in segments] == [
        ("", T0, appeared.at),
        ("deploying", appeared.at, T0 + timedelta(minutes=20)),
        ("running", T0 + timedelta(minutes=20), T0 + timedelta(minutes=40)),
        ("", T0 + timedelta(minutes=40), window.now),
    ]
    assert [s.tone for s in segments] == ["none", "info", "ok", "none"]
    assert segments[-1].label == "gone: no longer listed"
    first_import = charts.status_segments(
        [], window, current_status="running", first_seen_at=T0 + timedelta(minutes=5)
    )
    assert [(s.status, s.label) for s in first_import] == [
        ("", "not observed yet"),
        ("running", "running"),
    ]


def test_it_says_when_older_changes_were_left_out():
    segments = charts.status_segments(
        [Change(30, "running", "failed")],
        window_1h(),
        current_status="failed",
        first_seen_at=T0 - timedelta(days=1),
        earlier_unknown=True,
    )
    assert [(s.status, s.label) for s in segments] == [
        ("", "older changes not drawn"),
        ("failed", "failed"),
    ]


def test_it_escapes_statuses_in_the_timeline():
    window = window_1h()
    segments = [Segment(HOSTILE_NAME, T0, window.now)]
    svg = charts.timeline_chart(segments, window, charts.RANGES["1h"], label=HOSTILE_NAME)
    assert HOSTILE_NAME not in svg
    assert "unknown: &lt;script&gt;alert(1)&lt;/script&gt; from before 00:00 UTC to now" in svg
    assert '<g class="seg seg-unknown">' in svg


# In Chromium: the charts are real pictures, in both themes, with no CSP violation.


@pytest.fixture
def history(sim_time, source, clock, fleet):
    """Polls before the browser signs in, so no page asks for one while the test polls."""
    drive(source, clock, fleet, polls=40, every=120)
    return (
        Service.objects.filter(status_changes__from_status="concerning")
        .order_by("service_name")
        .first()
    )


@pytest.mark.browser
def test_it_draws_the_charts_in_a_browser_in_both_themes(history, live_server, operator, tmp_path):
    url = f"{live_server.url}/services/{history.service_id}/?range=6h"
    fills: dict[str, str] = {}

    def steps(page) -> None:
        for theme in ("light", "dark"):
            page.goto(url)
            page.evaluate(f"localStorage.setItem('dashboard.theme', '{theme}')")
            page.reload()
            assert page.evaluate("document.documentElement.dataset.theme") == theme
            for kind in ("calls", "rate", "timeline"):
                box = page.locator(f"svg.chart-{kind}").bounding_box()
                assert box["width"] > 800 and box["height"] > 40, (kind, box)
            assert page.locator("svg.chart-calls g.column").count() == 72
            bars = page.locator("svg.chart-calls rect.bar-calls")
            assert bars.count() >= 10
            heights = bars.evaluate_all("bars => bars.map(b => Number(b.getAttribute('height')))")
            assert max(heights) > 50
            fills[theme] = page.evaluate(
                "getComputedStyle(document.querySelector('svg.chart-calls rect.bar-calls')).fill"
            )
            assert page.locator("svg.chart-timeline g.seg").count() >= 2
            titles = page.locator("svg.chart-timeline g.seg > title").all_text_contents()
            assert any("observed between polls at" in t for t in titles), titles
            calls = page.locator("svg.chart-calls g.column > title").all_text_contents()
            assert any(re.search(r"UTC: [\d,]+ calls", t) for t in calls), calls
            page.locator("svg.chart-calls g.column").nth(68).hover()
            page.screenshot(path=str(tmp_path / f"service-{theme}.png"), full_page=True)

    assert in_chromium(live_server.url, operator.username, steps) == []
    # Coloured by service.css from the theme's variables: a different blue in each theme.
    assert fills["light"] != fills["dark"]
    assert "rgb(0, 0, 0)" not in fills.values()
    print(f"screenshots in {tmp_path}")
