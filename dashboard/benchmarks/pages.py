"""The service table's server time for a fixed set of views, beside the admin and its own SQL."""

from __future__ import annotations

import statistics
import time

from django.core.management.base import CommandError
from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext

# The views the table is judged on: URL query → what it exercises.
VIEWS = [
    ("", "default (most urgent first)"),
    ("status=running", "one status"),
    ("status=failed&status=concerning", "two statuses"),
    ("q=prod", "free-text search"),
    *((f"sort={key}", f"sort {key}") for key in ("name", "-calls", "-rate", "-published")),
    ("page=last", "last page"),
]
ADMIN_VIEWS = {
    "": "",
    "status=running": "status__exact=running",
    "q=prod": "q=prod",
    "sort=name": "o=1",
}


def measure_pages(repeat: int) -> dict:
    from dashboard.accounts import create_user

    user = create_user("bench", "bench-password-long-enough", "admin")
    user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    return {
        "views": {label: time_view(client, query, repeat) for query, label in VIEWS},
        "admin": {
            query: time_url(client, f"/admin/dashboard/service/?{admin}", repeat)
            for query, admin in ADMIN_VIEWS.items()
        },
    }


def time_view(client: Client, query: str, repeat: int) -> dict:
    if query == "page=last":
        query = "page=1000000"  # past the end: the table shows its last page
    numbers = time_url(client, f"/?{query}", repeat)
    numbers["sql_bound_ms"] = sql_bound(query)
    return numbers


def time_url(client: Client, url: str, repeat: int) -> dict:
    client.get(url)  # warm the caches the way a second visit finds them
    samples = []
    for _ in range(repeat):
        reset_queries()
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise CommandError(f"{url} answered {response.status_code}")
    samples.sort()
    return {
        "median_ms": statistics.median(samples),
        "p95_ms": samples[min(len(samples) - 1, int(len(samples) * 0.95))],
        "queries": len(queries.captured_queries),
    }


def sql_bound(query: str) -> float:
    """The SQL the page cannot do without, alone: the count and one page of rows (median)."""
    from django.http import QueryDict

    from dashboard.filters import parse_filter
    from dashboard.models import Service

    view, _ = parse_filter(QueryDict(query))
    rows = view.ordered(view.apply(Service.objects.all()))
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        count = rows.count()
        last_page = max(0, (count - 1) // view.per_page)
        start = min(view.page - 1, last_page) * view.per_page
        list(rows[start : start + view.per_page])
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def render_pages(r: dict) -> list[str]:
    lines = [
        f"  {'view':<28}{'median':>9}{'p95':>9}{'queries':>9}{'SQL alone':>11}{'ours-SQL':>10}"
        f"{'admin':>9}{'admin/ours':>12}",
    ]
    for query, label in VIEWS:
        v = r["views"][label]
        admin = r["admin"].get(query)
        admin_cells = (
            f"{admin['median_ms']:>8.1f} {admin['median_ms'] / v['median_ms']:>11.1f}"
            if admin
            else f"{'—':>9}{'—':>12}"
        )
        lines.append(
            f"  {label:<28}{v['median_ms']:>8.1f} {v['p95_ms']:>8.1f} {v['queries']:>8} "
            f"{v['sql_bound_ms']:>10.1f} {v['median_ms'] - v['sql_bound_ms']:>9.1f}{admin_cells}"
        )
    lines.append("  (times in ms; admin = the Django admin changelist of the same view)")
    return lines
