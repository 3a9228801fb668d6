"""The service table's shape at any size: constant queries, an index for every sort, the search
and the tiles, no per-row queries in exports, and the far end of the table read backwards.

Timings are the benchmark's business (manage.py benchmark); these tests guard the structure
that makes them hold, on SQLite and on PostgreSQL (CI runs both).
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from conftest import names, work_out_windows
from django.db import connection
from django.http import QueryDict

from dashboard.models import Service, Source
from dashboard.queries import services as services_query
from dashboard.queries.search import search
from dashboard.queries.services import DETAIL_SORTS, SORTS, UNSHOWN, WINDOW_SORTS, CountedPaginator
from dashboard.web.params import parse_filter

# The detail's sorts (instances, reason) sort the rows they join: no index serves them.
TABLE_SORTS = [key for key in SORTS if key not in WINDOW_SORTS + DETAIL_SORTS]


@pytest.fixture
def rows(make_service):
    """Services with ties and unknown (NULL) numbers in every sortable column."""
    made = []
    for n in range(40):
        unknown = n % 7 == 0
        made.append(
            make_service(
                f"svc-{n % 13:02d}",
                ("running", "failed", "deploying", "stopped")[n % 4],
                owner=f"owner-{n % 3}",
                infer_type=("real-time", "batch")[n % 2],
                invocation_times=None if unknown else 10 * (n % 5),
                failed_times=None if unknown else n % 3,
                failure_rate=None if unknown else (n % 3) / 10,
                calls_delta=None if n % 5 == 0 else n % 4,
                publish_at=None if n % 6 == 0 else None if unknown else made_at(n),
            )
        )
    return made


def made_at(n: int):
    from datetime import UTC, datetime, timedelta

    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=n % 9)


def view_rows(query: str) -> list[int]:
    """Every row of a view, in the table's order, by the plain forward query."""
    view, errors = parse_filter(QueryDict(query))
    assert not errors
    sources = list(Source.objects.all())
    return list(
        view.ordered(view.apply(Service.objects.all(), sources)).values_list("id", flat=True)
    )


@pytest.mark.parametrize("sort", [s for key in TABLE_SORTS for s in (key, f"-{key}")])
@pytest.mark.parametrize("parts", ["as-the-database-reads", "in-two-parts"])
def test_it_reads_pages_past_the_middle_backwards_in_the_same_order(
    client, rows, sort, parts, monkeypatch
):
    expected = view_rows(f"sort={sort}")
    if parts == "in-two-parts":  # as PostgreSQL reads a descending sort of a nullable column
        monkeypatch.setattr(services_query, "nulls_first_descending", lambda: True)
    view, _ = parse_filter(QueryDict(f"sort={sort}&per_page=25"))
    sources = list(Source.objects.all())
    parts = view.rows(Service.objects.all(), sources)
    for per_page in (25, 6, 17):  # pages that end at, inside and across the parts' border
        paginator = CountedPaginator(parts, per_page, count=len(expected))
        seen = [service.pk for n in paginator.page_range for service in paginator.page(n)]
        assert seen == expected  # each page past the middle is read from the far end


def test_it_shows_the_last_page_with_its_rows_in_order(client, rows):
    everything = [s.service_name for s in Service.objects.order_by("service_name", "id")]
    response = client.get("/?sort=name&per_page=25&page=2")
    assert names(response) == everything[25:]
    assert "26–40 of 40" in response.content.decode()


@pytest.mark.parametrize("page", ["1", "2", "last"])
def test_it_keeps_a_constant_number_of_queries_at_any_size(
    client, make_service, django_assert_max_num_queries, page
):
    page = "1000000" if page == "last" else page  # sends to the last page, followed below
    url = f"/?sort=-calls&per_page=25&page={page}"
    for n in range(30):
        make_service(f"a{n}")
    with django_assert_max_num_queries(40) as small:
        client.get(url, follow=True)
    for n in range(320):  # 350 in all: the last page is full too
        make_service(f"b{n}", owner=f"owner-{n % 7}")
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert len(names(client.get(url, follow=True))) == 25


def fetch(client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("url", ["/services.csv?window=1h", "/api/services?window=1h&per_page=200"])
def test_exports_make_no_query_per_row(client, make_service, django_assert_max_num_queries, url):
    for n in range(3):
        make_service(f"a{n}")
    work_out_windows()
    with django_assert_max_num_queries(20) as small:
        fetch(client, url)
    for n in range(150):
        make_service(f"b{n}")
    work_out_windows()
    with django_assert_max_num_queries(len(small.captured_queries)):
        body = fetch(client, url)
    assert body.count(b"00000000-0000-4000-8000-") == 153


# --- The indexes each view reads: EXPLAIN on either database -------------------------------


@contextmanager
def planner_prefers_indexes(*, no_sorts: bool = True):
    """On PostgreSQL, make a sort or a sequential scan the last resort: with a handful of test
    rows it would rightly prefer them, and the question here is whether an index *can* serve."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(f"SET enable_sort = {'off' if no_sorts else 'on'}")
        try:
            yield
        finally:
            cursor.execute("RESET enable_seqscan")
            cursor.execute("RESET enable_sort")


def plan(queryset, *, no_sorts: bool = True) -> str:
    with planner_prefers_indexes(no_sorts=no_sorts):
        return queryset.explain()


def page_queries(query: str, *, reverse: bool = False) -> list:
    """The queries a page of the view reads (one per part of its rows)."""
    view, errors = parse_filter(QueryDict(query))
    assert not errors
    parts = view.rows(Service.objects.defer(*UNSHOWN), list(Source.objects.all()))
    return [(rows.reverse() if reverse else rows)[:50] for rows in parts]


def assert_sorted_by_an_index(text: str) -> None:
    if connection.vendor == "sqlite":
        assert "TEMP B-TREE" not in text, text
        assert re.search(r"(SCAN|SEARCH) dashboard_service USING (COVERING )?INDEX service_", text)
    else:
        main = text.split("SubPlan")[0]  # the detectors' subqueries sort a service's own rows
        assert not re.search(r"^\s*(->\s*)?(Incremental )?Sort\b", main, re.M), text
        assert re.search(r"Index Scan( Backward)? using service_", main), text


@pytest.mark.parametrize("sort", [s for key in TABLE_SORTS for s in (key, f"-{key}")])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "last-pages"])
def test_each_sort_reads_an_index_in_order(rows, sort, reverse):
    for query in page_queries(f"sort={sort}", reverse=reverse):
        assert_sorted_by_an_index(plan(query))


@pytest.mark.parametrize("query", ["status=running", "status=failed&status=concerning"])
def test_a_status_filter_keeps_the_default_sort_on_its_index(rows, query):
    (query,) = page_queries(query)
    assert_sorted_by_an_index(plan(query))


def test_the_status_tiles_count_from_an_index(rows):
    view, _ = parse_filter(QueryDict(""))
    counting = view.counting(Service.objects.all(), list(Source.objects.all()))
    if connection.vendor == "sqlite":
        text = plan(counting)
        assert "USING INDEX service_status" in text or "COVERING INDEX service_status" in text
        assert "TEMP B-TREE" not in text, text
        return
    # Grouped in the index's order: with a handful of rows (and statistics saying so) any
    # index on the live rows would feed a hash aggregate just as well.
    with connection.cursor() as cursor:
        cursor.execute("SET enable_hashagg = off")
        try:
            text = plan(counting)
        finally:
            cursor.execute("RESET enable_hashagg")
    assert "service_status" in text, text


def test_a_disabled_source_does_not_turn_the_tiles_into_a_table_scan(rows):
    Source.objects.create(name="off", endpoint="http://127.0.0.1:9", project_id="p", enabled=False)
    test_the_status_tiles_count_from_an_index(rows)


def test_the_search_reads_its_trigram_index(rows):
    view, _ = parse_filter(QueryDict("q=svc-0"))
    if connection.vendor == "sqlite":
        counting = view.counting(Service.objects.all(), list(Source.objects.all()))
        assert "VIRTUAL TABLE" in plan(counting), plan(counting)
        return
    # The search alone, where no other index can stand in for it: the search table's trigram
    # index must match its LIKE (at scale, the planner picks it for the table's queries).
    # Earlier tests' rolled-back rows sit in that index's pending list, which a few rows' worth
    # of a scan by id would beat: plain index scans are set aside too.
    with connection.cursor() as cursor:
        cursor.execute("SET enable_indexscan = off")
        try:
            text = plan(Service.objects.filter(search(view.q)).values("id"), no_sorts=False)
        finally:
            cursor.execute("RESET enable_indexscan")
    assert "Bitmap Index Scan on dashboard_service_search_text" in text, text


def test_the_partial_leaves_the_filter_forms_choice_lists_unread(client, rows):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as full:
        body = client.get("/").content.decode()
    with CaptureQueriesContext(connection) as partial:
        client.get("/", headers={"HX-Request": "true"})
    assert '<option value="owner-2">' in body
    assert sum("WITH RECURSIVE" in q["sql"] for q in full.captured_queries) == 2
    assert not any("WITH RECURSIVE" in q["sql"] for q in partial.captured_queries)
