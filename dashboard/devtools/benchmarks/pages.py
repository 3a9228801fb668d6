"""The service table's server time for a fixed set of views, beside the admin and its own SQL."""

from __future__ import annotations

import math
import statistics
import time
from urllib.parse import urlsplit

from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from dashboard.devtools.benchmarks.scrape import measure_scrape, render_scrape

# The table's sortable columns: its sort key → the column's place in the admin's list_display
# (ServiceAdmin), whose changelist sorts by ?o=N (1-based; -N descending).
SORT_COLUMNS = {
    "name": 1,
    "status": 3,
    "type": 4,
    "owner": 5,
    "calls": 6,
    "failures": 7,
    "rate": 8,
    "delta": 9,
    "published": 10,
}
# The views the table is judged on: URL query → what it exercises, and the admin changelist's
# query for the same view ("p=last" is the admin's last page, worked out when measured).
VIEWS = [
    ("", "default (most urgent first)", ""),
    ("status=running", "one status", "status__exact=running"),
    ("status=failed&status=concerning", "two statuses", "status__in=failed,concerning"),
    ("q=prod", "free-text search", "q=prod"),
    *(
        (f"sort={sign}{key}", f"sort {sign}{key}", f"o={sign}{column}")
        for key, column in SORT_COLUMNS.items()
        for sign in ("", "-")
    ),
    ("page=last", "last page", "p=last"),
]
# PostgreSQL's figures may be at most this multiple of SQLite's, measured in one run (issue 17).
POSTGRES_TARGET = 2.0
# A windowed view may take at most this multiple of the default view of the same run.
WINDOWED_TARGET = 3.0
DEFAULT_VIEW = VIEWS[0][1]


def measure_pages(repeat: int) -> dict:
    from dashboard.web.accounts import create_user

    user = create_user("bench", "bench-password-long-enough", "admin")
    user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    vacuumed = settle()
    return {
        "vacuumed": vacuumed,
        "views": {label: time_view(client, query, repeat) for query, label, _ in VIEWS},
        "admin": {label: time_admin(client, admin, repeat) for _, label, admin in VIEWS},
        "windowed": {label: time_url(client, url, repeat) for url, label in windowed_views()},
        "scrape": measure_scrape(repeat),
    }


def windowed_views() -> list[tuple[str, str]]:
    """The history benchmark's windowed views (URL, label), timed here on the polled fleet's
    kept windows: a windowed view reads stored rows, whatever the size of the history."""
    # Imported here: the history benchmark imports this module.
    from dashboard.devtools.benchmarks.history import HISTORY_VIEWS

    return [(url, label) for url, label in HISTORY_VIEWS if "window=" in url]


def settle() -> bool:
    """PostgreSQL: VACUUM ANALYZE the service, search and window tables, as autovacuum does
    within a minute or so of a first poll's bulk writes; whether the pages were timed after it.

    Until then the table's visibility map is unset and every count reads the heap as well as
    the index (about 35 ms more at 100,000 services), so without this the figures would depend
    on whether autovacuum happened to come by during the run.
    """
    from dashboard.models import SEARCH_TABLE, Service, ServiceWindow

    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        for table in (Service._meta.db_table, SEARCH_TABLE, ServiceWindow._meta.db_table):
            cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(table)}")
    return True


def time_admin(client: Client, query: str, repeat: int) -> dict:
    from dashboard.admin import ServiceAdmin
    from dashboard.models import Service

    if query == "p=last":
        query = f"p={-(-Service.objects.count() // ServiceAdmin.list_per_page)}"
    return time_url(client, f"/admin/dashboard/service/?{query}", repeat)


def time_view(client: Client, query: str, repeat: int) -> dict:
    if query == "page=last":
        query = last_page(client)
    numbers = time_url(client, f"/?{query}", repeat)
    numbers["sql_bound_ms"] = sql_bound(query, repeat)
    return numbers


def last_page(client: Client) -> str:
    """The query of the table's last page, where a page past the end redirects."""
    answer = client.get("/?page=1000000")
    if answer.status_code != 302:
        raise CommandError(f"a page past the end answered {answer.status_code}, not a redirect")
    return urlsplit(answer["Location"]).query


def time_url(client: Client, url: str, repeat: int) -> dict:
    client.get(url)  # warm the caches the way a second visit finds them
    # Counted apart: capturing queries costs time of its own, so the timed requests run without.
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    count = len(queries.captured_queries)  # now: the next request empties the log
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise CommandError(f"{url} answered {response.status_code}")
    samples.sort()
    return {
        "median_ms": statistics.median(samples),
        # Nearest rank: of 20 requests the 19th slowest, so one stray pause is not the p95.
        "p95_ms": samples[math.ceil(len(samples) * 0.95) - 1],
        "queries": count,
    }


def sql_bound(query: str, repeat: int) -> float:
    """The SQL the page cannot do without, alone: the count and one page of rows (median), as
    the table runs them (its count comes from the status tiles' query)."""
    from django.http import QueryDict

    from dashboard.models import Service, Source
    from dashboard.queries.services import UNSHOWN, CountedPaginator
    from dashboard.web.params import parse_filter

    view, _ = parse_filter(QueryDict(query))
    sources = list(Source.objects.all())
    # The page's own rows (derived columns and all), read the way the table reads them.
    parts = view.rows(Service.objects.defer(*UNSHOWN), sources)
    samples = []
    # As many runs as the page gets: a median of a few would make "ours − SQL" noisier.
    for _ in range(repeat):
        started = time.perf_counter()
        # The table's count is the sum of its status tiles: one GROUP BY is both.
        count = view.count(view.status_counts(Service.objects.all(), sources))
        list(CountedPaginator(parts, view.per_page, count=count).get_page(view.page))
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def render_pages(r: dict) -> list[str]:
    lines = [
        f"  {'view':<28}{'median':>9}{'p95':>9}{'queries':>9}{'SQL alone':>11}{'ours-SQL':>10}"
        f"{'admin':>9}{'admin/ours':>12}",
    ]
    for _, label, _ in VIEWS:
        v = r["views"][label]
        admin = r["admin"].get(label)
        admin_cells = (
            f"{admin['median_ms']:>8.1f} {admin['median_ms'] / v['median_ms']:>11.1f}"
            if admin
            else f"{'—':>9}{'—':>12}"
        )
        lines.append(
            f"  {label:<28}{v['median_ms']:>8.1f} {v['p95_ms']:>8.1f} {v['queries']:>8} "
            f"{v['sql_bound_ms']:>10.1f} {v['median_ms'] - v['sql_bound_ms']:>9.1f}{admin_cells}"
        )
    windowed = r.get("windowed", {})
    for label, v in windowed.items():
        lines.append(
            f"  {label:<28}{v['median_ms']:>8.1f} {v['p95_ms']:>8.1f} {v['queries']:>8} "
            f"{'—':>10} {'—':>9}{'—':>9}{'—':>12}"
        )
    lines.append("  (times in ms; admin = the Django admin changelist of the same view)")
    default_ms = r["views"][DEFAULT_VIEW]["median_ms"]
    for label, v in windowed.items():
        ratio = v["median_ms"] / default_ms
        lines.append(
            f"  {label} / default view: {ratio:.2f}x (target <= {WINDOWED_TARGET:g}x)"
            f"{'  MISS' if ratio > WINDOWED_TARGET else ''}"
        )
    if "scrape" in r:
        lines.extend(render_scrape(r["scrape"], default_ms))
    if r.get("vacuumed"):
        lines.append(
            "  (timed after VACUUM ANALYZE of the service, search and window tables, as "
            "autovacuum leaves them)"
        )
    return lines


def compare_pages(
    rows: list[tuple[str, float, float, str]], sqlite: dict, postgres: dict
) -> list[str]:
    """Each view's median on both databases and PostgreSQL's as a multiple of SQLite's, after
    `rows` (label, SQLite, PostgreSQL, unit) of other figures judged the same way; then
    /metrics and the exports, whose targets are their own (see scrape.py), for information."""
    for kind in ("views", "windowed"):
        for label, v in sqlite.get(kind, {}).items():
            rows.append((label, v["median_ms"], postgres[kind][label]["median_ms"], "ms"))
    lines = [
        f"  {'':<28}{'SQLite':>10}{'PostgreSQL':>12}{'PG/SQLite':>11}{'target':>9}",
    ]
    misses = 0
    for label, lite, pg, unit in rows:
        ratio = pg / lite
        miss = ratio > POSTGRES_TARGET
        misses += miss
        lines.append(
            f"  {label:<28}{lite:>7.1f} {unit:<2}{pg:>9.1f} {unit:<2}{ratio:>10.2f}x"
            f"{f'<= {POSTGRES_TARGET:g}x':>9}{'  MISS' if miss else ''}"
        )
    lines.append(f"  {misses} of {len(rows)} over the target")
    for label, v in sqlite.get("scrape", {}).items():
        lite, pg = v["median_ms"], postgres["scrape"][label]["median_ms"]
        lines.append(f"  {label:<28}{lite:>7.1f} ms{pg:>9.1f} ms{pg / lite:>10.2f}x{'—':>9}")
    return lines
