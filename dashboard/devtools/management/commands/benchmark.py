"""Measure ingest and page speed on a fresh database: `manage.py benchmark` prints a table.

Each fleet size runs in a child process of its own, against its own database (an SQLite file in a
temporary folder, or a fresh PostgreSQL database when --database-url names a server), with the
simulated API in another process, so the poll's memory is the poller's alone.
--compare-database-url runs each size on SQLite and then on PostgreSQL, back to back, and prints
PostgreSQL's figures as multiples of SQLite's: this machine's speed drifts by the hour, so only
figures of one run compare.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from dashboard.devtools.benchmarks.database import FreshDatabase
from dashboard.devtools.benchmarks.history import measure_history, render_history
from dashboard.devtools.benchmarks.ingest import MANAGE, measure_polls, render_polls
from dashboard.devtools.benchmarks.pages import (
    compare_pages,
    measure_pages,
    render_pages,
)

# The large history the table is timed against: two days of samples, one every ten minutes
# (the older day is then thinned to hourly by the pruning it also times).
HISTORY_HOURS, HISTORY_STEP = 48, 10


class Command(BaseCommand):
    help = "Benchmark poll ingest and the service table at several fleet sizes."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--services", type=int, nargs="+", default=[1000, 10000, 100000])
        parser.add_argument(
            "--repeat", type=int, default=20, help="requests per view (0: measure the polls only)"
        )
        parser.add_argument(
            "--database-url", help="a PostgreSQL server to benchmark on (default: SQLite)"
        )
        parser.add_argument(
            "--compare-database-url",
            metavar="URL",
            help="measure on SQLite, then on this PostgreSQL server, back to back, and print "
            "PostgreSQL / SQLite for the first poll and each view beside its target",
        )
        parser.add_argument(
            "--history",
            action="store_true",
            help="measure history instead: storage per service per day, the table's speed "
            "with two days of samples for every service, and pruning them",
        )
        parser.add_argument("--child", type=int, help=argparse.SUPPRESS)

    def handle(
        self, *args, services, repeat, database_url, compare_database_url, history, child, **_
    ) -> None:
        if child is not None:
            self.stdout.write(json.dumps(measure(child, repeat, history)))
            return
        if any(n < 1 for n in services) or repeat < 0:
            raise CommandError("--services must be at least 1 and --repeat at least 0")
        if compare_database_url and (database_url or history):
            raise CommandError("--compare-database-url goes without --database-url and --history")
        for n in services:
            if not compare_database_url:
                self.stdout.write(render(n, fresh_run(n, repeat, history, database_url)))
                continue
            # SQLite first, then PostgreSQL: the two children never run at once.
            sqlite = fresh_run(n, repeat, False, None)
            self.stdout.write(render(n, sqlite, "SQLite"))
            postgres = fresh_run(n, repeat, False, compare_database_url)
            self.stdout.write(render(n, postgres, "PostgreSQL"))
            self.stdout.write(render_comparison(n, sqlite, postgres))


def fresh_run(n: int, repeat: int, history: bool, database_url: str | None) -> dict:
    with tempfile.TemporaryDirectory() as scratch, FreshDatabase(database_url) as url:
        return run_child(n, repeat, history, scratch, url)


def run_child(n: int, repeat: int, history: bool, scratch: str, url: str | None) -> dict:
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
        [
            sys.executable,
            str(MANAGE),
            "benchmark",
            "--child",
            str(n),
            "--repeat",
            str(repeat),
            *(["--history"] if history else []),
        ],  # fmt: skip
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode:
        raise CommandError(f"the run with {n} services failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(n: int, repeat: int, history: bool) -> dict:
    """In the child: migrate, poll a simulated fleet of n services, time the pages."""
    call_command("migrate", verbosity=0)
    load = os.getloadavg()[0]
    if history:
        return {"history": measure_history(n, max(repeat, 1), HISTORY_HOURS, HISTORY_STEP)}
    results = {**measure_polls(n), **(measure_pages(repeat) if repeat else {})}
    # Other work shares the machine: the load average says how much, as the run began and ended.
    return {**results, "load": [load, os.getloadavg()[0]]}


def render(n: int, results: dict, database: str = "") -> str:
    title = f"\n{n:,} services" + (f", {database}" if database else "")
    if "history" in results:
        return "\n".join([title, *render_history(results["history"])])
    pages = render_pages(results) if "views" in results else []
    lines = [title, *render_polls(results), *pages]
    if "load" in results:
        began, ended = results["load"]
        lines.append(f"  load average {began:.1f} as the run began, {ended:.1f} at its end")
    return "\n".join(lines)


def render_comparison(n: int, sqlite: dict, postgres: dict) -> str:
    """PostgreSQL's first poll and views as multiples of SQLite's, measured back to back."""
    first = (sqlite["first_poll"]["seconds"], postgres["first_poll"]["seconds"])
    rows = [("first poll", first[0], first[1], "s")]
    title = f"\n{n:,} services, PostgreSQL / SQLite (measured back to back)"
    return "\n".join([title, *compare_pages(rows, sqlite, postgres)])
