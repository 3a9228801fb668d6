"""`manage.py benchmark --compare-database-url`: SQLite and PostgreSQL measured in one run, and
PostgreSQL's figures judged against SQLite's (issue 17's floors)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

from dashboard.devtools.benchmarks.pages import compare_pages


def figures(medians: dict[str, float]) -> dict:
    return {"views": {label: {"median_ms": ms} for label, ms in medians.items()}}


def test_it_gives_postgresql_as_a_multiple_of_sqlite_and_marks_the_misses():
    sqlite = figures({"default": 10.0, "sort name": 10.0})
    postgres = figures({"default": 19.0, "sort name": 25.0})
    lines = compare_pages([("first poll", 6.0, 11.4, "s")], sqlite, postgres)

    def row(label: str) -> str:
        return next(line for line in lines if line.strip().startswith(label))

    assert "1.90x" in row("first poll") and "MISS" not in row("first poll")
    assert "1.90x" in row("default") and "MISS" not in row("default")
    assert "2.50x" in row("sort name") and row("sort name").endswith("MISS")
    assert lines[-1].strip() == "1 of 3 over the target"


def test_it_wants_a_postgresql_server_and_nothing_else_to_compare_with(tmp_path):
    env = {**os.environ, "DASHBOARD_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "benchmark", "--services", "10", "--history",
         "--compare-database-url", "postgres://nobody@127.0.0.1:9/postgres"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "--compare-database-url goes without --database-url and --history" in done.stderr


@pytest.mark.postgresql
def test_the_benchmark_compares_both_databases_in_one_run(tmp_path):
    """A smoke run at a tiny size, on the PostgreSQL server of the suite's PostgreSQL run."""
    url = os.environ.get("DATABASE_URL", "")
    env = {**os.environ, "DASHBOARD_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL")
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "benchmark", "--services", "40", "--repeat",
         "1", "--compare-database-url", url],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "40 services, SQLite" in out and "40 services, PostgreSQL" in out
    comparison = out[out.index("PostgreSQL / SQLite") :]
    for label in ("first poll", "default (most urgent first)", "free-text search", "window 1h"):
        assert label in comparison
    assert "<= 2x" in comparison and "over the target" in comparison
