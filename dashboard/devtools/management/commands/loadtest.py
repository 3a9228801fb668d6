"""Load the served dashboard from a second process while the poller ingests a changing fleet.

`manage.py loadtest` starts, on loopback and in a scratch folder: the simulated API, the poller,
gunicorn as `make serve` runs it, then wrk against the table and its HTMX partial. It stops every
process it started, prints a table, and fails on any non-2xx answer, socket error, failed poll,
"database is locked" or traceback in the logs. With --compare-database-url it runs on SQLite,
then on that PostgreSQL server, and prints PostgreSQL's throughput as a share of SQLite's.
"""

from __future__ import annotations

import multiprocessing
import signal
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dashboard.devtools.benchmarks.database import FreshDatabase
from dashboard.devtools.benchmarks.load import LoadTestError, Plan, compare, render, run


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
            "--compare-database-url",
            metavar="URL",
            help="run on SQLite, then on this PostgreSQL server, back to back, and print "
            "PostgreSQL's requests per second as a share of SQLite's beside the target",
        )
        parser.add_argument(
            "--logs", type=Path, help="copy the server's, poller's and API's logs to this folder"
        )

    def handle(
        self,
        *args,
        database_url: str | None,
        compare_database_url: str | None,
        logs: Path | None,
        **options,
    ) -> None:
        plan_options = {key: options[key] for key in Plan.__dataclass_fields__ if key in options}
        counts = ("services", "seconds", "interval", "connections", "workers")
        if any(options[key] < 1 for key in counts) or not options["speed"] > 0:
            raise CommandError(
                "--services, --seconds, --interval, --connections and --workers must be at "
                "least 1, --speed above 0"
            )
        if compare_database_url and database_url:
            raise CommandError("--compare-database-url goes without --database-url")
        # A SIGTERM stops the run like Ctrl-C: through the `finally` that stops its processes.
        signal.signal(signal.SIGTERM, _interrupt)
        servers = [None, compare_database_url] if compare_database_url else [database_url]
        outcomes = []
        for server in servers:
            to = logs
            if logs and compare_database_url:  # each database's logs in a folder of its own
                to = logs / ("postgresql" if server else "sqlite")
            plan, outcome = self._run(plan_options, server, to)
            self.stdout.write(render(plan, outcome))
            outcomes.append(outcome)
        if len(outcomes) == 2:
            self.stdout.write(compare(*outcomes))
        if any(outcome.failed for outcome in outcomes):
            raise CommandError("the load test saw errors (above)")

    def _run(self, plan_options: dict, server: str | None, logs: Path | None):
        try:
            with (
                tempfile.TemporaryDirectory(prefix="loadtest-") as scratch,
                FreshDatabase(server) as url,
            ):
                plan = Plan(**plan_options, database_url=url)
                return plan, run(plan, Path(scratch), report=self._progress, logs_to=logs)
        except LoadTestError as exc:
            raise CommandError(str(exc)) from exc
        except KeyboardInterrupt:
            raise CommandError("interrupted; every process it started is stopped") from None

    def _progress(self, line: str) -> None:
        self.stderr.write(f"loadtest: {line}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
