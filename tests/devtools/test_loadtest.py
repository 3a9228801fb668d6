"""The load test: its checks catch what they must, and a tiny run cleans up after itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from conftest import ROOT
from local_http import LocalHTTPServer, QuietHandler

from dashboard.devtools.benchmarks.load import (
    Outcome,
    Plan,
    Result,
    compare,
    polls_in,
    run_wrk,
    trouble_in,
)


@pytest.fixture
def wrk() -> str:
    """The load tool; `make test` installs it, as it installs Chromium."""
    found = shutil.which("wrk")
    assert found, "wrk is not installed: run `make install-test`"
    return found


def test_it_finds_lock_errors_failed_polls_and_tracebacks_in_the_logs(tmp_path):
    (tmp_path / "poller.log").write_text(
        "polling; stop with Ctrl-C or SIGTERM\n"
        "default: 10000 services, 0 new, 812 changed, 0 gone in 1432 ms\n"
        "default: poll failed (database): database is locked\n"
    )
    (tmp_path / "web.log").write_text(
        "[2026-01-01 00:00:00 +0000] [7] [INFO] Booting worker with pid: 7\n"
        "2026-01-01 00:00:01 ERROR django.request: Internal Server Error: /\n"
        "Traceback (most recent call last):\n"
    )
    found = trouble_in([tmp_path / "poller.log", tmp_path / "web.log"])
    assert found == [
        "poller: default: poll failed (database): database is locked",
        "web: 2026-01-01 00:00:01 ERROR django.request: Internal Server Error: /",
        "web: Traceback (most recent call last):",
    ]
    assert polls_in(tmp_path / "poller.log") == [(10000, 812, 1432)]


class Redirecting(QuietHandler):
    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", "/login/")
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_it_counts_a_redirect_to_the_login_page_as_an_error(tmp_path, wrk):
    """wrk itself calls a 3xx a success; a page that sends us to log in is a failure here."""
    handler: type[BaseHTTPRequestHandler] = Redirecting
    plan = Plan(services=1, seconds=1, interval=10, speed=1, connections=2, workers=1)
    with LocalHTTPServer(handler) as server:
        results = run_wrk(wrk, tmp_path, plan, server.url, "no-session")
    assert all(result.requests > 0 for result in results)
    assert all(result.non_2xx == result.requests for result in results)
    assert all(result.errors for result in results)


def processes_using(folder: Path) -> list[int]:
    """Processes whose DASHBOARD_VAR_DIR lies under folder: what a run left behind."""
    marker = f"DASHBOARD_VAR_DIR={folder}".encode()
    left = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes():
                    left.append(int(entry.name))
            except OSError:
                continue  # gone already, or not ours to read
    return left


def test_a_tiny_run_prints_its_table_and_stops_everything_it_started(tmp_path, wrk):
    env = {**os.environ, "TMPDIR": str(tmp_path), "DASHBOARD_VAR_DIR": str(tmp_path / "var")}
    # On the suite's PostgreSQL run, the load test runs there too (in a database of its own).
    url = env.pop("DATABASE_URL", "")
    database = ["--database-url", url] if url.startswith("postgres") else []
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "loadtest", "--services", "30",
         "--seconds", "1", "--interval", "5", "--workers", "2", "--connections", "2", *database],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert ("PostgreSQL" if database else "SQLite") in done.stdout
    assert "/ (full page)" in done.stdout and "/ (HTMX partial)" in done.stdout
    assert "lock errors, failed polls or tracebacks in the logs: 0" in done.stdout
    assert processes_using(tmp_path) == []


def outcome(database: str, full: float, partial: float, errors: int = 0) -> Outcome:
    results = [
        Result(label, round(rate * 30), 30.0, errors, 0, 50.0, 80.0, 120.0, 200.0)
        for label, rate in (("/ (full page)", full), ("/ (HTMX partial)", partial))
    ]
    return Outcome(results=results, polls=[], trouble=[], database=database)


def test_the_comparison_gives_postgresql_s_share_of_sqlite_s_throughput():
    text = compare(outcome("SQLite 3.40.1 (WAL)", 80, 90), outcome("PostgreSQL 15.18", 44, 36))
    full = next(line for line in text.splitlines() if line.startswith("/ (full page)"))
    partial = next(line for line in text.splitlines() if line.startswith("/ (HTMX partial)"))
    assert "55%" in full and ">= 50%" in full and "MISS" not in full
    assert "40%" in partial and partial.endswith("MISS")
    assert "errors: SQLite 0, PostgreSQL 0" in text


@pytest.mark.postgresql
def test_a_tiny_comparison_runs_both_databases_in_one_invocation(tmp_path, wrk):
    url = os.environ.get("DATABASE_URL", "")
    env = {**os.environ, "TMPDIR": str(tmp_path), "DASHBOARD_VAR_DIR": str(tmp_path / "var")}
    env.pop("DATABASE_URL")
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "loadtest", "--services", "30",
         "--seconds", "1", "--interval", "5", "--workers", "2", "--connections", "2",
         "--compare-database-url", url, "--logs", str(tmp_path / "logs")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "SQLite" in done.stdout and "PostgreSQL" in done.stdout
    assert "PG/SQLite" in done.stdout and ">= 50%" in done.stdout
    assert "errors: SQLite 0, PostgreSQL 0" in done.stdout
    assert (tmp_path / "logs" / "sqlite" / "poller.log").exists()
    assert (tmp_path / "logs" / "postgresql" / "poller.log").exists()
    assert processes_using(tmp_path) == []
