"""Measure ingest and page speed on a fresh database: `manage.py benchmark` prints a table.

Each fleet size runs in a child process of its own, against its own database (an SQLite file in a
temporary folder, or a fresh PostgreSQL database when --database-url names a server), with the
simulated API in another process, so the poll's memory is the poller's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext

MANAGE = Path(__file__).resolve().parents[3] / "manage.py"
PROJECT_ID = "0be0c4a1a2b3c4d5e6f708192a3b4c5d"
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


class Command(BaseCommand):
    help = "Benchmark poll ingest and the service table at several fleet sizes."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--services", type=int, nargs="+", default=[1000, 10000, 100000])
        parser.add_argument("--repeat", type=int, default=15, help="requests per view")
        parser.add_argument(
            "--database-url", help="a PostgreSQL server to benchmark on (default: SQLite)"
        )
        parser.add_argument("--child", type=int, help=argparse.SUPPRESS)

    def handle(self, *args, services, repeat, database_url, child, **options) -> None:
        if child is not None:
            self.stdout.write(json.dumps(measure(child, repeat)))
            return
        if any(n < 1 for n in services) or repeat < 1:
            raise CommandError("--services and --repeat must be at least 1")
        for n in services:
            with tempfile.TemporaryDirectory() as scratch, FreshDatabase(database_url) as url:
                results = run_child(n, repeat, scratch, url)
            self.stdout.write(render(n, results))


class FreshDatabase:
    """An empty database for one run: a new PostgreSQL database, or None for SQLite."""

    def __init__(self, url: str | None):
        self.url, self.name = url, f"bench_{uuid.uuid4().hex[:10]}"

    def __enter__(self) -> str | None:
        if not self.url:
            return None
        import psycopg

        with psycopg.connect(self._admin(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
        return urlunsplit(urlsplit(self.url)._replace(path=f"/{self.name}"))

    def __exit__(self, *exc_info: object) -> None:
        if self.url:
            import psycopg

            with psycopg.connect(self._admin(), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def _admin(self) -> str:
        return urlunsplit(urlsplit(self.url)._replace(path="/postgres"))


def run_child(n: int, repeat: int, scratch: str, url: str | None) -> dict:
    # The child talks to itself through Django's test client, which calls itself "testserver".
    env = {
        **os.environ,
        "DASHBOARD_VAR_DIR": scratch,
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "testserver",
    }
    env.pop("DATABASE_URL", None)
    if url:
        env["DATABASE_URL"] = url
    done = subprocess.run(
        [sys.executable, str(MANAGE), "benchmark", "--child", str(n), "--repeat", str(repeat)],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode:
        raise CommandError(f"the run with {n} services failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(n: int, repeat: int) -> dict:
    """In the child: migrate, poll a simulated fleet of n services, time the pages."""
    from dashboard.accounts import create_user
    from dashboard.models import Source
    from dashboard.polling import poll_source

    call_command("migrate", verbosity=0)
    with Simulator(n, speed=1e-6) as url:
        source = Source.objects.create(
            name="bench",
            endpoint=url,
            project_id=PROJECT_ID,
            auth_kind="none",
            interval_seconds=3600,
        )
        rss_before = peak_rss_mb()
        first = timed(lambda: poll_source(source))
        rss_after = peak_rss_mb()
        second = timed(lambda: poll_source(source))
    with Simulator(n, speed=50.0) as url:
        Source.objects.filter(pk=source.pk).update(endpoint=url)
        source.refresh_from_db()
        time.sleep(2)  # 100 simulated seconds: deployments move, counters grow
        changed = timed(lambda: poll_source(source))
    user = create_user("bench", "bench-password-long-enough", "admin")
    user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    return {
        "first_poll": {"seconds": first[0], "ok": first[1].ok, "fetched": first[1].fetched_count},
        "peak_rss_mb": {"before": rss_before, "after": rss_after},
        "unchanged_poll": {"seconds": second[0], "updated": second[1].updated_count},
        "changed_poll": {"seconds": changed[0], "updated": changed[1].updated_count},
        "views": {label: time_view(client, query, repeat) for query, label in VIEWS},
        "admin": {
            query: time_url(client, f"/admin/dashboard/service/?{admin}", repeat)
            for query, admin in ADMIN_VIEWS.items()
        },
    }


class Simulator:
    """simulate_modelarts in its own process, so its memory is not the poller's."""

    def __init__(self, n: int, speed: float):
        self.args = [
            sys.executable, str(MANAGE), "simulate_modelarts", "--port", "0", "--services",
            str(n), "--seed", "7", "--auth", "none", "--project-id", PROJECT_ID,
            "--speed", str(speed),
        ]  # fmt: skip

    def __enter__(self) -> str:
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        return next(word for word in line.split() if word.startswith("http://"))

    def __exit__(self, *exc_info: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def render(n: int, r: dict) -> str:
    lines = [
        f"\n{n:,} services",
        f"  first poll: {r['first_poll']['seconds']:.2f} s ({r['first_poll']['fetched']:,} read); "
        f"peak RSS {r['peak_rss_mb']['before']:.0f} → {r['peak_rss_mb']['after']:.0f} MB",
        f"  unchanged poll: {r['unchanged_poll']['seconds']:.2f} s, "
        f"{r['unchanged_poll']['updated']:,} rows rewritten",
        f"  poll after 100 simulated s: {r['changed_poll']['seconds']:.2f} s, "
        f"{r['changed_poll']['updated']:,} rows changed",
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
    return "\n".join(lines)
