"""Windowed numbers (?window=) and "what changed since" (?since=) in the service table."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
from conftest import names, work_out_windows
from django.http import QueryDict
from django.utils import timezone

from dashboard.ingest import poll as polling
from dashboard.models import SavedView, Service, ServiceSample, Source, StatusChange
from dashboard.queries import services as services_query
from dashboard.queries.services import CountedPaginator
from dashboard.web.params import parse_filter


def row_html(response, service: Service) -> str:
    """The table row of one service."""
    body = response.content.decode()
    start = body.index(f'data-service-id="{service.service_id}"')
    return body[body.rindex("<tr", 0, start) : body.index("</tr>", start)]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def sample(run):
    """A sample of a service's counters `minutes` ago (its `at` is what windows read)."""

    def make(service: Service, minutes: float, calls: int | None, failures: int | None, **extra):
        return ServiceSample.objects.create(
            service=service,
            poll_run=run,
            at=timezone.now() - timedelta(minutes=minutes),
            status=extra.pop("status", service.status),
            invocation_times=calls,
            failed_times=failures,
            **extra,
        )

    return make


@pytest.fixture
def change(run):
    def make(service: Service, minutes: float, from_status: str, to_status: str):
        return StatusChange.objects.create(
            service=service,
            source=service.source,
            poll_run=run,
            at=timezone.now() - timedelta(minutes=minutes),
            from_status=from_status,
            to_status=to_status,
        )

    return make


def ago(**delta: float) -> datetime:
    return timezone.now() - timedelta(**delta)


@pytest.fixture
def histories(make_service, sample):
    """Five hand-made histories; their numbers over 1h are in the comments."""
    baseline = make_service(
        "baseline", invocation_times=200, failed_times=30, first_seen_at=ago(days=2)
    )
    sample(baseline, 180, 100, 10)  # the counters at the window's start
    sample(baseline, 30, 150, 20)  # inside the window: not the baseline
    # → 100 calls, 20 failures, 20 %
    new = make_service("new", invocation_times=60, failed_times=6, first_seen_at=ago(minutes=20))
    sample(new, 20, 10, 1)  # first seen inside the window: counted from there
    # → 50 calls, 5 failures, 10 %
    nosamples = make_service(
        "nosamples", "stopped", invocation_times=70, failed_times=7, first_seen_at=ago(days=2)
    )
    # → no history before the window: unknown
    reset = make_service("reset", invocation_times=20, failed_times=1, first_seen_at=ago(days=2))
    sample(reset, 180, 500, 50)  # → counters went down: unknown
    quiet = make_service(
        "quiet", "failed", invocation_times=100, failed_times=0, first_seen_at=ago(days=2)
    )
    sample(quiet, 180, 100, 0)  # → 0 calls, 0 failures, no rate
    work_out_windows()
    return {s.service_name: s for s in (baseline, new, nosamples, reset, quiet)}


def windowed(client, query: str) -> dict[str, dict | None]:
    data = client.get(f"/api/services?{query}").json()
    return {s["service_name"]: s.get("window") for s in data["services"]}


def test_it_computes_calls_failures_and_rate_over_the_window(client, histories):
    assert windowed(client, "window=1h") == {
        "baseline": {"calls": 100, "failures": 20, "failure_rate": 0.2},
        "new": {"calls": 50, "failures": 5, "failure_rate": 0.1},
        "quiet": {"calls": 0, "failures": 0, "failure_rate": None},
        "reset": {"calls": None, "failures": None, "failure_rate": None},
        "nosamples": {"calls": None, "failures": None, "failure_rate": None},
    }


def test_it_reads_the_counter_as_of_the_window_start(client, histories):
    # 15 minutes back, the baseline is the sample of 30 minutes ago.
    numbers = windowed(client, "window=15m")
    assert numbers["baseline"] == {"calls": 50, "failures": 10, "failure_rate": 0.2}
    # First seen 20 minutes ago, before this window: its sample then is the baseline.
    assert numbers["new"] == {"calls": 50, "failures": 5, "failure_rate": 0.1}
    # Over 7 days, services first seen two days ago count from their first sample; one with
    # no sample at all stays unknown.
    week = windowed(client, "window=7d")
    assert week["baseline"] == {"calls": 100, "failures": 20, "failure_rate": 0.2}
    assert week["nosamples"] == {"calls": None, "failures": None, "failure_rate": None}


def test_it_shows_the_window_columns_beside_the_lifetime_ones(client, histories):
    response = client.get("/?window=1h")
    body = response.content.decode()
    assert "Calls (1h)" in body and "Failures (1h)" in body and "Failure rate (1h)" in body
    row = row_html(response, histories["baseline"])
    assert re.findall(r'<td class="num[^"]*">([^<]*)</td>', row) == [
        "200",
        "30",
        "15.00%",
        "100",
        "20",
        "20.00%",
        "—",
        "—",  # instances: no detail fetched
    ]
    cells = re.findall(r'<td class="num[^"]*">([^<]*)</td>', row_html(response, histories["reset"]))
    assert cells[3:6] == ["—", "—", "—"]


def test_it_shows_no_window_columns_without_a_window(client, histories):
    body = client.get("/").content.decode()
    assert "Calls (" not in body
    assert "window" not in client.get("/api/services").json()["services"][0]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("wcalls", ["quiet", "new", "baseline", "nosamples", "reset"]),
        ("-wcalls", ["baseline", "new", "quiet", "reset", "nosamples"]),
        ("wfailures", ["quiet", "new", "baseline", "nosamples", "reset"]),
        ("-wfailures", ["baseline", "new", "quiet", "reset", "nosamples"]),
        ("wrate", ["new", "baseline", "nosamples", "reset", "quiet"]),
        ("-wrate", ["baseline", "new", "quiet", "reset", "nosamples"]),
    ],
)
def test_it_sorts_by_each_windowed_column_with_unknowns_last(client, histories, sort, expected):
    assert names(client.get(f"/?window=1h&sort={sort}")) == expected


def test_it_opens_a_window_on_what_is_failing_now(client, histories):
    # Windowed failure rate, highest first; unknown rates after, most severe status first.
    expected = ["baseline", "new", "quiet", "reset", "nosamples"]
    response = client.get("/?window=1h")
    assert names(response) == expected
    assert names(client.get("/?window=1h&sort=failing")) == expected
    assert re.search(
        r'aria-sort="descending"[^>]*>\s*<a href="[^"]*">Failure rate \(1h\)',
        (response.content.decode()),
    )
    # The default is left out of links; another sort is kept.
    assert client.get("/api/services?window=1h").json()["sort"] == "failing"
    assert 'href="/?sort=status&amp;window=1h"' in response.content.decode()


def test_it_drops_a_windowed_sort_when_the_window_goes(client, histories):
    response = client.get("/?window=1h&sort=-wcalls")
    assert '<a class="chip" href="/" aria-label="Remove filter window: 1h">' in (
        response.content.decode()
    )
    assert client.get("/?sort=-wcalls").status_code == 200
    assert names(client.get("/?sort=-wcalls")) == names(client.get("/"))


def test_it_keeps_window_since_and_detectors_in_every_link(client, histories):
    since = "2026-01-01T00:00:00Z"
    response = client.get(f"/?window=24h&since={since}&detect=idle&sort=name&per_page=25")
    body = response.content.decode().replace("&amp;", "&")
    kept = "window=24h&since=2026-01-01T00%3A00%3A00Z&detect=idle"
    assert f"/?sort=-name&per_page=25&{kept}" in body  # the sort link
    assert f"/services.csv?sort=name&{kept}" in body
    assert f"/api/services?sort=name&per_page=25&{kept}" in body
    assert 'aria-label="Remove filter window: 24h"' in body
    assert 'aria-label="Remove filter changed since: 2026-01-01T00:00:00Z"' in body
    assert 'href="/?sort=name&per_page=25&window=24h&detect=idle"' in body  # since's chip
    assert 'href="/?sort=name&per_page=25&window=24h&since=2026-01-01T00%3A00%3A00Z"' in body
    client.post("/views/save", {"name": "mine", "query": f"window=24h&since={since}&page=2"})
    assert SavedView.objects.get().query == "window=24h&since=2026-01-01T00%3A00%3A00Z"


@pytest.mark.parametrize(
    "query",
    ["window=2h", "window=", "since=yesterday", "since=2026-13-01", "detect=lazy", "window=1H"],
)
def test_it_refuses_bad_values(client, histories, query):
    if query == "window=":
        assert client.get(f"/?{query}").status_code == 200  # empty means "no window"
        return
    response = client.get(f"/?{query}")
    name = query.split("=")[0]
    assert response.status_code == 400
    assert f"<li><code>{name}</code>:" in response.content.decode()
    assert names(response) == []
    assert client.get(f"/api/services?{query}").status_code == 400
    assert client.get(f"/services.csv?{query}").status_code == 400


@pytest.fixture
def since_rows(make_service, sample, change):
    """Since an hour ago: a status change, a failure rate up (5.6% → 25%) and one down
    (30% → 1%); a busy service with a few new failures at its usual rate (5% → 6%), and one
    with too few calls since to say."""
    status = make_service("status", "failed", first_seen_at=ago(days=2))
    change(status, 30, "running", "failed")
    failing = make_service(
        "failing", invocation_times=130, failed_times=15, first_seen_at=ago(days=2)
    )
    sample(failing, 120, 90, 5)
    sample(failing, 10, 130, 15)
    recovered = make_service(
        "recovered", invocation_times=200, failed_times=31, first_seen_at=ago(days=2)
    )
    sample(recovered, 120, 100, 30)
    sample(recovered, 10, 200, 31)
    steady = make_service(
        "steady", invocation_times=1100, failed_times=56, first_seen_at=ago(days=2)
    )
    sample(steady, 120, 1000, 50)
    sample(steady, 10, 1100, 56)
    calm = make_service("calm", invocation_times=100, failed_times=8, first_seen_at=ago(days=2))
    change(calm, 180, "deploying", "running")
    sample(calm, 120, 90, 5)  # 3 failures in 10 calls: too few calls to call it a rate
    return status, failing, recovered, steady, calm


def test_it_highlights_what_changed_since(client, since_rows):
    status, failing, recovered, steady, calm = since_rows
    response = client.get(f"/?since={quote(iso(ago(hours=1)))}")
    assert response.status_code == 200
    assert 'class="changed"' in row_html(response, status)
    assert "status changed" in row_html(response, status)
    assert 'class="changed"' in row_html(response, failing)
    assert "failure rate up, 5.56% → 25.00%" in row_html(response, failing)
    assert "failure rate down, 30.00% → 1.00%" in row_html(response, recovered)
    assert "changed" not in row_html(response, steady)
    assert "changed" not in row_html(response, calm)
    assert '<span class="tag tag-changed" title="Since ' in row_html(response, failing)


def test_it_says_what_changed_in_chinese(client, since_rows):
    _, failing, *_ = since_rows
    response = client.get(
        f"/?since={quote(iso(ago(hours=1)))}", headers={"Accept-Language": "zh-Hans"}
    )
    assert "失败率上升，5.56% → 25.00%" in row_html(response, failing)


def test_it_highlights_nothing_without_since_or_before_any_change(client, since_rows):
    assert 'class="changed"' not in client.get("/").content.decode()
    recent = client.get(f"/?since={quote(iso(ago(minutes=5)))}").content.decode()
    assert 'class="changed"' not in recent


def test_it_reports_changes_since_in_json_and_csv(client, since_rows):
    query = f"since={quote(iso(ago(hours=1)))}&sort=name"
    data = client.get(f"/api/services?{query}").json()
    changed = {s["service_name"]: s["changed_since"] for s in data["services"]}
    assert {name: (c["status"], c["failures"], c["recovered"]) for name, c in changed.items()} == {
        "calm": (False, False, False),
        "failing": (False, True, False),
        "recovered": (False, False, True),
        "status": (True, False, False),
        "steady": (False, False, False),
    }
    assert changed["failing"]["failure_rate_before"] == pytest.approx(5 / 90)
    assert changed["failing"]["failure_rate"] == pytest.approx(10 / 40)
    assert changed["calm"]["failure_rate"] is None  # 10 calls, under the minimum
    rows = {r["service_name"]: r for r in csv_rows(client, query)}
    assert [
        (name, r["status_changed_since"], r["failing_since"], r["recovered_since"])
        for name, r in rows.items()
    ] == [
        ("calm", "False", "False", "False"),
        ("failing", "False", "True", "False"),
        ("recovered", "False", "False", "True"),
        ("status", "True", "False", "False"),
        ("steady", "False", "False", "False"),
    ]
    assert float(rows["steady"]["failure_rate_since"]) == pytest.approx(0.06)


def test_it_offers_a_since_my_last_visit_link_from_the_server(client, since_rows, operator):
    from dashboard.models import UserPreference

    UserPreference.objects.update_or_create(user=operator, defaults={"seen_at": ago(hours=2)})
    body = client.get("/?status=failed").content.decode()
    assert '<a id="since-last-visit" href="/?status=failed&amp;since=' in body
    assert '<input type="hidden" name="since" value="">' in body


def csv_rows(client, query: str) -> list[dict[str, str]]:
    response = client.get(f"/services.csv?{query}")
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize("query", ["window=1h", "window=1h&sort=-wcalls", "window=15m&sort=wrate"])
def test_json_and_csv_equal_the_table(client, histories, query):
    table = names(client.get(f"/?{query}"))
    data = client.get(f"/api/services?{query}").json()
    assert [s["service_name"] for s in data["services"]] == table
    rows = csv_rows(client, query)
    assert [r["service_name"] for r in rows] == table
    for row, item in zip(rows, data["services"], strict=True):
        window = item["window"]
        assert row["calls_in_window"] == ("" if window["calls"] is None else str(window["calls"]))
        assert row["failures_in_window"] == (
            "" if window["failures"] is None else str(window["failures"])
        )
        rate = window["failure_rate"]
        assert row["failure_rate_in_window"] == ("" if rate is None else str(rate))


@pytest.mark.parametrize("sort", ["-wcalls", "-wfailures", "-wrate"])
def test_a_descending_windowed_sort_read_in_two_parts_keeps_its_order(histories, sort, monkeypatch):
    """PostgreSQL reads these as the rows with a value, then the unknown ones (see
    ONE_INDEX_NULLABLE): page by page, the order is the one query's, unknowns last."""
    view, _ = parse_filter(QueryDict(f"window=1h&sort={sort}"))
    sources = list(Source.objects.all())
    one_query = view.ordered(view.apply(Service.objects.all(), sources))
    expected = list(one_query.values_list("service_name", flat=True))
    assert set(expected[-2:]) == {"nosamples", "reset"}  # unknown over 1h
    monkeypatch.setattr(services_query, "nulls_first_descending", lambda: True)
    parts = view.rows(Service.objects.all(), sources)
    assert len(parts) == 2
    for per_page in (1, 2, 3):
        paginator = CountedPaginator(parts, per_page, count=len(expected))
        pages = [paginator.page(n) for n in paginator.page_range]
        assert [service.service_name for page in pages for service in page] == expected


@pytest.mark.parametrize("detect", ["", "&detect=idle&detect=stuck"])
def test_it_keeps_a_constant_number_of_queries_as_rows_and_samples_grow(
    client, make_service, sample, change, django_assert_max_num_queries, detect
):
    url = f"/?window=1h&since={quote(iso(ago(hours=1)))}{detect}&per_page=200"
    for n in range(3):
        service = make_service(f"a{n}", "deploying", first_seen_at=ago(days=1))
        sample(service, 100, 10, 1)
    work_out_windows()
    # The page's own, plus the alerts' bells, the stored details and the user's last visit
    # (read, and written on a first visit): a query each.
    with django_assert_max_num_queries(16) as small:
        assert len(names(client.get(url))) == 3
    for n in range(120):
        service = make_service(f"b{n}", "deploying" if n % 3 else "running")
        for minutes in (200, 90, 40, 5)[: 3 + n % 2]:  # half of them stuck for 40 minutes
            sample(service, minutes, 10 * n + minutes, n)
        change(service, 20, "running", "deploying")
    work_out_windows()
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert len(names(client.get(url))) > 3


def test_it_counts_calls_the_simulator_made_in_the_window(client, polled, source, clock):
    """End to end: two polls of the simulator; both fall inside a 15-minute window (samples
    carry the wall-clock time of the poll), so the window counts from the first poll."""
    first = dict(Service.objects.values_list("service_id", "invocation_times"))
    first_failures = dict(Service.objects.values_list("service_id", "failed_times"))
    clock.advance(900)
    assert polling.poll_source(source).ok
    now = dict(Service.objects.values_list("service_id", "invocation_times"))
    data = client.get("/api/services?window=15m&per_page=200").json()
    assert data["count"] == len(now)
    grew = 0
    for item in data["services"]:
        sid = item["service_id"]
        # A service new in the second poll counts from its first sample: nothing yet.
        before, after = first.get(sid, now[sid]), now[sid]
        expected = None if before is None or after is None or after < before else after - before
        assert item["window"]["calls"] == expected, sid
        if expected:
            grew += 1
            failures = item["failed_times"] - first_failures.get(sid, item["failed_times"])
            assert item["window"]["failures"] == failures
            assert item["window"]["failure_rate"] == failures / expected
    assert grew > 0


@pytest.fixture
def noisy(histories, make_service, sample):
    """One call in the window, and it failed: a 100 % rate over too few calls to mean much."""
    noisy = make_service("noisy", invocation_times=101, failed_times=1, first_seen_at=ago(days=2))
    sample(noisy, 180, 100, 0)
    work_out_windows()
    return noisy


@pytest.mark.parametrize(
    ("min_calls", "expected"),
    [
        # The default (20): "noisy" ranks among the unknowns, by status then name.
        (20, ["baseline", "new", "quiet", "noisy", "reset", "nosamples"]),
        (1, ["noisy", "baseline", "new", "quiet", "reset", "nosamples"]),
        # 50 calls ("new") are enough at 50, not at 51.
        (50, ["baseline", "new", "quiet", "noisy", "reset", "nosamples"]),
        (51, ["baseline", "quiet", "new", "noisy", "reset", "nosamples"]),
    ],
)
def test_it_ranks_a_windowed_rate_as_failing_only_over_enough_calls(
    client, noisy, settings, min_calls, expected
):
    settings.DASHBOARD_RATE_MIN_CALLS = min_calls
    work_out_windows()  # as the next poll does (see ingest.windows)
    assert names(client.get("/?window=1h")) == expected
    assert [
        s["service_name"] for s in client.get("/api/services?window=1h").json()["services"]
    ] == (expected)
    # The rate is still shown as it is, and sorting by its column still sorts by it.
    assert windowed(client, "window=1h")["noisy"] == {
        "calls": 1,
        "failures": 1,
        "failure_rate": 1.0,
    }
    assert names(client.get("/?window=1h&sort=-wrate"))[0] == "noisy"


def test_it_defaults_to_twenty_calls_before_a_rate_ranks():
    from django.conf import settings

    assert settings.DASHBOARD_RATE_MIN_CALLS == 20
