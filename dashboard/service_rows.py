"""A polled service as the service table stores it, and the plain SQL that writes such rows.

A poll holds every service of its snapshot until the last page is in (one transaction per
snapshot), so at 100,000 services the form matters: a tuple of column values with the raw item
as JSON text takes a fraction of a ServiceRecord and its dict. Rows go to the database through
executemany (COPY on PostgreSQL), not model instances: building 100,000 of those took longer
than the SQL itself.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from typing import NamedTuple

from django.db import connection, models, transaction

from dashboard.modelarts import ServiceRecord
from dashboard.models import (
    SEARCH_TABLE,
    SEARCHED_COLUMNS,
    Service,
    ServiceSample,
    StatusChange,
)
from dashboard.statuses import severity

WRITE_BATCH = 1000
# The columns a poll sets from the API's item, in the order ServiceRow.state holds them.
STATE_COLUMNS = (
    "service_name", "description", "tenant", "project", "owner", "publish_at", "infer_type",
    "workspace_id", "status", "progress", "invocation_times", "failed_times", "is_shared",
    "shared_count", "schedule", "due_time", "start_time", "finished_time", "operation_time",
    "transition_at", "is_opened_sample_collection", "is_free", "additional_properties", "raw",
    "fingerprint", "severity", "failure_rate",
)  # fmt: skip
_STATUS, _PROGRESS, _CALLS, _FAILURES, _TRANSITION = (
    STATE_COLUMNS.index(name)
    for name in ("status", "progress", "invocation_times", "failed_times", "transition_at")
)
# Anyone who can create a service writes these strings: columns keep what fits (the raw item
# keeps everything), so one 10,000-character name cannot fail a whole poll.
_LIMITS = {
    name: Service._meta.get_field(name).max_length
    for name in (
        "service_name", "tenant", "project", "owner", "infer_type", "workspace_id", "status"
    )
}  # fmt: skip
_EMPTY_LIST, _EMPTY_OBJECT = "[]", "{}"


class ServiceRow(NamedTuple):
    """One service of a snapshot: its id, fingerprint and STATE_COLUMNS' values.

    state is None for a service the table already holds exactly so (see RowMaker).
    """

    service_id: str
    fingerprint: str
    state: tuple

    @property
    def status(self) -> str:
        return self.state[_STATUS]

    @property
    def transition_at(self) -> datetime | None:
        return self.state[_TRANSITION]

    @property
    def counters(self) -> tuple[int | None, int | None]:
        return self.state[_CALLS], self.state[_FAILURES]

    @property
    def observed(self) -> tuple:
        """What a history sample records: a change to any of these is history."""
        return self.state[_STATUS], self.state[_PROGRESS], *self.counters


class RowMaker:
    """row_of, except that a service the table already holds with the same fingerprint becomes
    a stand-in without state, made before the poll: in a mostly unchanged fleet the snapshot
    then costs little more than the ids, instead of every service's columns and raw text.

    stored: service_id → fingerprint of the table's live rows, read under the poll's claim.
    """

    def __init__(self, stored: Iterable[tuple[str, str]]):
        self._same = {sid: ServiceRow(sid, fingerprint, None) for sid, fingerprint in stored}

    def __call__(self, record: ServiceRecord) -> ServiceRow:
        fingerprint, stored = _fingerprinted(record.raw)
        same = self._same.get(record.service_id)
        if same is not None and same.fingerprint == fingerprint:
            return same
        return _row(record, fingerprint, stored)


def row_of(record: ServiceRecord) -> ServiceRow:
    return _row(record, *_fingerprinted(record.raw))


def _row(record: ServiceRecord, fingerprint: str, stored: str) -> ServiceRow:
    schedule = [vars(rule) for rule in record.schedule]
    properties = record.additional_properties
    state = (
        record.service_name[: _LIMITS["service_name"]], record.description,
        _shared(record.tenant, "tenant"), _shared(record.project, "project"),
        _shared(record.owner, "owner"), record.publish_at,
        _shared(record.infer_type, "infer_type"), _shared(record.workspace_id, "workspace_id"),
        _shared(record.status, "status"), record.progress, record.invocation_times,
        record.failed_times, record.is_shared, record.shared_count,
        json.dumps(schedule) if schedule else _EMPTY_LIST,
        record.due_time, record.start_time, record.finished_time, record.operation_time,
        record.transition_at, record.is_opened_sample_collection, record.is_free,
        json.dumps(properties) if properties else _EMPTY_OBJECT,
        stored, fingerprint, severity(record.status),
        _rate(record.failed_times, record.invocation_times),
    )  # fmt: skip
    return ServiceRow(record.service_id, fingerprint, state)


def fingerprint_of(record: ServiceRecord) -> str:
    return _fingerprinted(record.raw)[0]


def _fingerprinted(item: dict) -> tuple[str, str]:
    """The item's fingerprint, and its text as stored."""
    canonical, stored = _encoded(item)
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest(), stored


def _encoded(item: dict) -> tuple[str, str]:
    """The item as hashed (sorted keys, no operation_time) and as stored (with it, last).

    operation_time is "the time of the current request": it differs on every poll, so it stays
    out of the fingerprint. One encoding serves both, which halves the cost of the second.
    """
    if "operation_time" not in item:
        text = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
        return text, text
    rest = {key: value for key, value in item.items() if key != "operation_time"}
    canonical = json.dumps(rest, sort_keys=True, separators=(",", ":"), default=str)
    value = item["operation_time"]
    # Epoch milliseconds, almost always: an int is its own JSON.
    encoded = str(value) if type(value) is int else json.dumps(value, default=str)
    member = '"operation_time":' + encoded
    return canonical, canonical[:-1] + ("," if rest else "") + member + "}"


def _shared(value: str, column: str) -> str:
    """A short text that repeats across the fleet (tenant, owner, status…): one string shared
    by every row instead of one per service."""
    return sys.intern(value[: _LIMITS[column]])


def _rate(failures: int | None, calls: int | None) -> float | None:
    if not calls or failures is None:
        return None
    return failures / calls


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
    """
    if connection.vendor != "sqlite":
        yield  # PostgreSQL's search indexes are plain indexes
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
    prepare = _preparer(ServiceSample, columns)
    if rows:
        insert(ServiceSample, columns, (prepare(row) for row in rows))


def insert_changes(rows: list[tuple]) -> None:
    """rows: (service_id, source_id, poll_run_id, at, previous_poll_at, from_status, to_status,
    transition_at)."""
    columns = ("service_id", "source_id", "poll_run_id", "at", "previous_poll_at", "from_status",
               "to_status", "transition_at")  # fmt: skip
    prepare = _preparer(StatusChange, columns)
    if rows:
        insert(StatusChange, columns, (prepare(row) for row in rows))


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
