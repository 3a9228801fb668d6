"""The search index's migrations: on PostgreSQL a user who may not create pg_trgm is told what
to ask for, in words, rather than given a bare permission error; they run both ways on each
database, the search table of 0014 filled from the rows already there."""

from __future__ import annotations

import importlib
import os
import sqlite3
import subprocess
import sys

import pytest
from conftest import MANAGE, manage
from django.db import DatabaseError

migration = importlib.import_module("dashboard.migrations.0002_service_speed")


class PermissionDenied(Exception):
    sqlstate = "42501"


class FakeCursor:
    def __init__(self, *, installed: bool, error: Exception | None = None):
        self.installed, self.error, self.executed = installed, error, []
        self.result = None

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def execute(self, sql: str) -> None:
        self.executed.append(sql)
        if sql.startswith("SELECT 1 FROM pg_extension"):
            self.result = (1,) if self.installed else None
        elif sql.startswith("SELECT current_database()"):
            self.result = ("dashboard", "webapp")
        elif sql.startswith("CREATE EXTENSION") and self.error:
            raise self.error

    def fetchone(self):
        return self.result


class FakeSchemaEditor:
    def __init__(self, cursor: FakeCursor):
        self.connection = self
        self._cursor = cursor

    def cursor(self) -> FakeCursor:
        return self._cursor


def denied() -> DatabaseError:
    error = DatabaseError("permission denied to create extension")
    error.__cause__ = PermissionDenied()
    return error


def test_it_says_who_must_create_the_extension_and_where():
    cursor = FakeCursor(installed=False, error=denied())
    with pytest.raises(migration.MissingExtension) as raised:
        migration._pg_trgm(FakeSchemaEditor(cursor))
    message = str(raised.value)
    assert "pg_trgm" in message
    assert "'webapp'" in message and "'dashboard'" in message
    assert "CREATE EXTENSION pg_trgm;" in message


def test_it_leaves_an_installed_extension_alone():
    cursor = FakeCursor(installed=True)
    migration._pg_trgm(FakeSchemaEditor(cursor))
    assert not any(sql.startswith("CREATE") for sql in cursor.executed)


def test_it_lets_other_database_errors_through():
    cursor = FakeCursor(installed=False, error=DatabaseError("disk full"))
    with pytest.raises(DatabaseError, match="disk full"):
        migration._pg_trgm(FakeSchemaEditor(cursor))


def test_the_sqlite_search_migrations_run_backwards_and_forwards(tmp_path):
    env = {**os.environ, "DASHBOARD_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    manage = [sys.executable, str(MANAGE), "migrate"]

    def migrate(*target: str) -> dict[str, str]:
        subprocess.run([*manage, "-v0", *target], env=env, check=True, timeout=120)
        database = sqlite3.connect(tmp_path / "dashboard.sqlite3")
        schema = dict(database.execute("SELECT name, sql FROM sqlite_master"))
        database.close()
        return schema

    trigger, pause = "dashboard_service_search_insert", "dashboard_service_search_paused"
    # 0005: the insert trigger fires for every row; the poller drops it for its bulk inserts.
    schema = migrate()
    assert "WHEN" not in schema[trigger] and pause not in schema
    # Back to 0003: the trigger asks the pause table again.
    schema = migrate("dashboard", "0003")
    assert "WHEN NOT EXISTS" in schema[trigger] and pause in schema
    assert "dashboard_service_search" not in migrate("dashboard", "0001")
    schema = migrate()
    assert "WHEN" not in schema[trigger] and pause not in schema


BEFORE_SEARCH_TABLE = "0013"
# A foreign key's index that a unique constraint's index leads with: gone since 0014.
REDUNDANT = {"dashboard_servicewindow_service_id_14d265aa"}
# The DESC NULLS LAST twins of the nullable sorts' indexes: gone since 0015.
TWINS = {
    *(f"service_{name}_desc" for name in ("calls", "failures", "rate", "delta", "published")),
    *(f"window_{name}_desc" for name in ("calls", "failures", "rate")),
}
# A service written by the current models, before the migration is taken back and made again.
MAKE_SERVICE = """
from django.utils import timezone
from dashboard.models import Service, Source
source = Source.objects.create(name="s", endpoint="http://127.0.0.1:9", project_id="p")
Service.objects.create(source=source, service_id="id-1", service_name="Kept-Before",
    description="made before the migration", status="running", severity=1, fingerprint="f",
    first_seen_at=timezone.now())
"""


@pytest.mark.postgresql
def test_the_postgresql_search_table_migrates_both_ways_and_keeps_the_rows(shared_database):
    import psycopg

    manage(shared_database, "migrate", "-v0")
    manage(shared_database, "shell", "-c", MAKE_SERVICE)
    with psycopg.connect(shared_database["DATABASE_URL"], autocommit=True) as database:

        def search(q: str) -> list[str]:
            rows = database.execute(
                "SELECT service_name FROM dashboard_service WHERE id IN "
                "(SELECT id FROM dashboard_service_search WHERE text LIKE UPPER(%s))",
                [f"%{q}%"],
            )
            return [name for (name,) in rows]

        def indexes() -> set[str]:
            rows = database.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename IN "
                "('dashboard_service', 'dashboard_service_search', 'dashboard_servicewindow')"
            )
            return {name for (name,) in rows}

        def compression() -> str:
            """The stored /metrics text's compression method (pg_attribute.attcompression)."""
            (method,) = database.execute(
                "SELECT attcompression FROM pg_attribute WHERE attname = 'text' "
                "AND attrelid = 'dashboard_expositionpart'::regclass"
            ).fetchone()
            return method

        assert search("kept-bef") == ["Kept-Before"] == search("BEFORE THE MIGRATION")
        migrated = indexes()
        assert not {"service_search_name", "service_search_id", "service_search_desc"} & migrated
        assert "window_failing" in migrated and "window_failing_desc" not in migrated
        assert not REDUNDANT & migrated
        assert not TWINS & migrated
        assert compression() == "l"  # lz4, which Debian's PostgreSQL is built with
        manage(shared_database, "migrate", "-v0", "dashboard", BEFORE_SEARCH_TABLE)
        before = indexes()
        assert {"service_search_name", "service_search_id", "service_search_desc"} <= before
        assert {"window_failing", "window_failing_desc", *REDUNDANT, *TWINS} <= before
        assert compression() == ""  # the server's default again
        assert "dashboard_service_search_text" not in before
        manage(shared_database, "migrate", "-v0")
        assert indexes() == migrated
        assert search("kept-bef") == ["Kept-Before"]
