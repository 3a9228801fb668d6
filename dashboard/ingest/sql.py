"""The plain SQL that writes a snapshot's rows.

Rows go to the database through executemany (COPY on PostgreSQL), not model instances:
building 100,000 of those took longer than the SQL itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice

from django.db import DatabaseError, connection, models, transaction

from dashboard.ingest.rows import STATE_COLUMNS, ServiceRow
from dashboard.models import (
    SEARCH_TABLE,
    SEARCHED_COLUMNS,
    Service,
    ServiceSample,
    ServiceWindow,
    StatusChange,
)

log = logging.getLogger(__name__)
WRITE_BATCH = 1000


def insert_services(source_id: int, rows: list[ServiceRow], now: datetime) -> dict[str, int]:
    """INSERT the rows first seen now; their ids by service_id."""
    if not rows:
        return {}
    columns = ("source_id", "service_id", "first_seen_at", "status_changed_at", *STATE_COLUMNS)
    date = _date_adapter()
    at = date(now)
    prepare = _preparer(Service, STATE_COLUMNS)
    values = (
        (source_id, row.service_id, at, date(row.transition_at)) + prepare(row.state)
        for row in rows
    )
    # Read back rather than RETURNING: executemany returns nothing on either database.
    ids = Service.objects.filter(source_id=source_id, first_seen_at=now)
    with _inserting_in_bulk(ids, len(rows)):
        insert(Service, columns, values)
    return dict(ids.values_list("service_id", "pk").iterator(chunk_size=WRITE_BATCH))


@contextmanager
def _inserting_in_bulk(new_rows: models.QuerySet, count: int) -> Iterator[None]:
    """SQLite: while a poll inserts its `count` new services, the search index's insert trigger
    is dropped, and so are the table's indexes when the new rows outnumber the stored ones (a
    first import); after, the indexes are built again and the new rows indexed for search in
    one statement.

    Any trigger makes SQLite keep a statement journal per inserted row, a copy of every index
    page the row touches: with the service table's dozen indexes, 95,000 rows took 4.0 s to
    insert with the trigger present and 1.8 s without; building the indexes from all their
    rows at once saved another 0.5 s of a first poll. All of it happens inside a savepoint of
    the snapshot's transaction, so no other connection ever sees the table without them, and
    a failed poll rolls it all back.

    PostgreSQL: the search table's insert trigger stands aside while a setting says so (see
    migration 0014), and the new rows are indexed for search in one statement after.
    """
    if connection.vendor == "postgresql":
        with _searched_in_bulk(new_rows):
            yield
        return
    if connection.vendor != "sqlite":
        yield
        return
    table, trigger = Service._meta.db_table, f"{SEARCH_TABLE}_insert"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        (stored,) = cursor.fetchone()
        # The unique constraint's index has no SQL of its own: it stays.
        cursor.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = %s AND sql IS NOT NULL "
            "AND (name = %s OR (type = 'index' AND %s))",
            [table, trigger, count > stored],
        )
        aside = cursor.fetchall()
        if trigger not in {name for _, name, _ in aside}:
            raise RuntimeError(f"the trigger {trigger} is missing: run `manage.py migrate`")
        for kind, name, _ in aside:
            cursor.execute(f"DROP {kind.upper()} {connection.ops.quote_name(name)}")
        yield
        for _, _, create in aside:
            cursor.execute(create)
        ids, params = new_rows.values("pk").query.sql_with_params()
        # lower(): the search table holds lowered text, as the trigger writes it.
        cursor.execute(
            f"INSERT INTO {SEARCH_TABLE} (rowid, {', '.join(SEARCHED_COLUMNS)}) "
            f"SELECT id, {', '.join(f'lower({c})' for c in SEARCHED_COLUMNS)} "
            f"FROM {table} WHERE id IN ({ids})",
            params,
        )


@contextmanager
def _searched_in_bulk(new_rows: models.QuerySet) -> Iterator[None]:
    """PostgreSQL: one INSERT … SELECT into the search table for the rows inserted meanwhile,
    instead of the trigger's call per row. The setting is local to a savepoint of the
    snapshot's transaction: a failed insert rolls it back with the rows."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('dashboard.search_in_bulk', 'on', true)")
        yield
        cursor.execute("SELECT set_config('dashboard.search_in_bulk', 'off', true)")
        ids, params = new_rows.values("pk").query.sql_with_params()
        cursor.execute(
            f"INSERT INTO {SEARCH_TABLE} (id, text) SELECT id, {SEARCH_TABLE}_text("
            f"{', '.join(SEARCHED_COLUMNS)}) FROM {Service._meta.db_table} WHERE id IN ({ids})",
            params,
        )


def update_services(updates: list[tuple[int, dict[str, object]]]) -> None:
    """UPDATE the rows by id, grouped by the set of columns written.

    Django's bulk_update builds one CASE per column, which grows quadratically slow on large
    batches. Columns that did not change are left out of SET, so triggers on them do not fire.
    """
    groups: dict[tuple[str, ...], list[tuple]] = {}
    for pk, values in updates:
        names = tuple(sorted(values))
        groups.setdefault(names, []).append((pk, *(values[name] for name in names)))
    for names, rows in groups.items():
        prepare = _preparer(Service, ("id", *names))
        prepared = (prepare(row) for row in rows)
        if connection.vendor == "postgresql":
            _update_from_copy(names, prepared)
        else:
            # executemany reuses one prepared statement on SQLite.
            quote = connection.ops.quote_name
            assignments = ", ".join(f"{quote(name)} = %s" for name in names)
            table = quote(Service._meta.db_table)
            rows_last = ((*row[1:], row[0]) for row in prepared)
            _execute_many(f"UPDATE {table} SET {assignments} WHERE id = %s", rows_last)


def _update_from_copy(names: tuple[str, ...], rows: Iterable[tuple]) -> None:
    """PostgreSQL: COPY the new values into a scratch table, then one UPDATE … FROM it.

    A statement per row is parsed and planned per row; this is two statements in all.
    """
    quote = connection.ops.quote_name
    table = quote(Service._meta.db_table)
    columns = ", ".join(quote(name) for name in ("id", *names))
    assignments = ", ".join(f"{quote(name)} = new.{quote(name)}" for name in names)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE service_update ON COMMIT DROP AS "
            f"SELECT {columns} FROM {table} WITH NO DATA"
        )
        with cursor.cursor.copy(f"COPY service_update ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"UPDATE {table} SET {assignments} FROM service_update AS new WHERE {table}.id = new.id"
        )
        cursor.execute("DROP TABLE service_update")


def insert_samples(rows: list[tuple]) -> None:
    """rows: (service_id, poll_run_id, at, status, progress, invocation_times, failed_times)."""
    columns = ("service_id", "poll_run_id", "at", "status", "progress", "invocation_times",
               "failed_times")  # fmt: skip
    insert_rows(ServiceSample, columns, rows)


def insert_changes(rows: list[tuple]) -> None:
    """rows: (service_id, source_id, poll_run_id, at, previous_poll_at, from_status, to_status,
    transition_at)."""
    columns = ("service_id", "source_id", "poll_run_id", "at", "previous_poll_at", "from_status",
               "to_status", "transition_at")  # fmt: skip
    insert_rows(StatusChange, columns, rows)


def insert_rows(model: type[models.Model], columns: tuple[str, ...], rows: list[tuple]) -> None:
    """INSERT plain Python values (dates adapted here; JSON columns given as their text)."""
    prepare = _preparer(model, columns)
    if rows:
        insert(model, columns, (prepare(row) for row in rows))


def insert(model: type[models.Model], columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ", ".join(quote(model._meta.get_field(c).column) for c in columns)
    if connection.vendor == "postgresql":
        # One COPY stream instead of a statement per row, each parsed and planned on its own:
        # 100,000 services took 29 s to insert that way, COPY takes a fraction of it.
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join(["%s"] * len(columns))
    _execute_many(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)


@contextmanager
def write_cache() -> Iterator[None]:
    """SQLite: a 16 MB page cache while a snapshot is written, back to what it was after.

    Writing 100,000 rows touches a dozen indexes all over; with the default 2 MB SQLite spent a
    second of a 100k first poll re-reading pages it had just evicted. Bigger gained no more.
    """
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        (before,) = cursor.fetchone()
        cursor.execute("PRAGMA cache_size = -16384")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(before)}")


# PostgreSQL's autovacuum samples a table again once a tenth of it changed (its default
# analyze scale factor), but only at its next round, a minute or more later.
RESAMPLE_SHARE = 0.1


def resample_if_grown(added: int) -> None:
    """PostgreSQL: ANALYZE the tables a poll fills once it added at least a tenth of the fleet
    (a first poll, a fleet that grew), right after its snapshot is committed.

    Until then the planner takes the table for what it was: after a first poll of 100,000
    services it expected a few hundred, and the failure-rate alert rule evaluated next read
    every service's window row (0.3 s) instead of the window index (0.1 ms).
    """
    if connection.vendor != "postgresql" or added <= 0:
        return
    quote = connection.ops.quote_name
    services = Service._meta.db_table
    tables = (services, SEARCH_TABLE, ServiceWindow._meta.db_table, ServiceSample._meta.db_table)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # -1 (never sampled) or what the last ANALYZE or VACUUM counted.
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [services])
            (known,) = cursor.fetchone()
            if added < RESAMPLE_SHARE * known:
                return
            for table in tables:
                cursor.execute(f"ANALYZE {quote(table)}")
    except DatabaseError as exc:
        # The snapshot is written: autovacuum samples the tables later instead.
        log.warning("ANALYZE after a poll that added %d services failed: %s", added, exc)


def _execute_many(sql: str, rows: Iterable[tuple]) -> None:
    # In batches: a generator stays a generator, so no second copy of 100,000 rows is built.
    rows = iter(rows)
    with connection.cursor() as cursor:
        while batch := list(islice(rows, WRITE_BATCH)):
            cursor.executemany(sql, batch)


def _preparer(model: type[models.Model], columns: tuple[str, ...]):
    """A function that turns a tuple of Python values for `columns` into database values.

    Only dates need it (SQLite stores them as text); JSON columns already hold their text.
    """
    dates = [
        i
        for i, column in enumerate(columns)
        if isinstance(model._meta.get_field(column), models.DateTimeField)
    ]
    adapt = _date_adapter()

    def prepare(values: tuple) -> tuple:
        values = list(values)
        for i in dates:
            values[i] = adapt(values[i])
        return tuple(values)

    return prepare


def _date_adapter() -> Callable[[datetime | None], object]:
    """Django's date adapter, with a shortcut for SQLite keeping UTC: a poll's dates are all
    aware UTC already, and the general path cost half a second per 100,000 services."""
    adapt = connection.ops.adapt_datetimefield_value
    if connection.vendor != "sqlite" or connection.timezone is not UTC:
        return adapt

    def utc_text(value: datetime | None) -> object:
        if value is not None and value.tzinfo is UTC:
            # What Django stores, naive UTC as text: the ISO form without its "+00:00".
            return value.isoformat(" ")[:-6]
        return adapt(value)

    return utc_text
