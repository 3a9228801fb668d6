"""Load the served dashboard from a second process while the poller ingests a changing fleet.

`manage.py loadtest` starts, on loopback and in a scratch folder: the simulated API, the poller,
gunicorn as `make serve` runs it, then wrk against the table and its HTMX partial. It stops every
process it started, prints a table, and fails on any non-2xx answer, socket error, failed poll,
"database is locked" or traceback in the logs.
"""

from __future__ import annotations

import multiprocessing
import signal
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dashboard.devtools.benchmarks.database import FreshDatabase
from dashboard.devtools.benchmarks.load import LoadTestError, Plan, render, run


class Command(BaseCommand):
    help = "Load-test the served dashboard (gunicorn) with wrk while the poller writes."
    # It runs everything against databases of its own; this process needs none.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser) -> None:
        parser.add_argument("--services", type=int, default=10_000, help="simulated fleet size")
        parser.add_argument("--seconds", type=int, default=30, help="load per URL, in seconds")
        parser.add_argument("--interval", type=int, default=10, help="seconds between polls")
        parser.add_argument(
            "--speed",
            type=float,
            default=10.0,
            help="simulated seconds per second: how fast services change between polls",
        )
        parser.add_argument("--connections", type=int, default=8, help="wrk's open connections")
        parser.add_argument(
            "--workers",
            type=int,
            default=2 * multiprocessing.cpu_count() + 1,
            help="gunicorn workers (default as make serve: two per core plus one)",
        )
        parser.add_argument(
            "--database-url",
            help="a PostgreSQL server to run on, in a fresh database of its own (default: SQLite)",
        )
        parser.add_argument(
            "--logs", type=Path, help="copy the server's, poller's and API's logs to this folder"
        )

    def handle(self, *args, database_url: str | None, logs: Path | None, **options) -> None:
        plan_options = {key: options[key] for key in Plan.__dataclass_fields__ if key in options}
        counts = ("services", "seconds", "interval", "connections", "workers")
        if any(options[key] < 1 for key in counts) or not options["speed"] > 0:
            raise CommandError(
                "--services, --seconds, --interval, --connections and --workers must be at "
                "least 1, --speed above 0"
            )
        # A SIGTERM stops the run like Ctrl-C: through the `finally` that stops its processes.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            with (
                tempfile.TemporaryDirectory(prefix="loadtest-") as scratch,
                FreshDatabase(database_url) as url,
            ):
                plan = Plan(**plan_options, database_url=url)
                outcome = run(plan, Path(scratch), report=self._progress, logs_to=logs)
        except LoadTestError as exc:
            raise CommandError(str(exc)) from exc
        except KeyboardInterrupt:
            raise CommandError("interrupted; every process it started is stopped") from None
        self.stdout.write(render(plan, outcome))
        if outcome.failed:
            raise CommandError("the load test saw errors (above)")

    def _progress(self, line: str) -> None:
        self.stderr.write(f"loadtest: {line}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
