"""One fetched snapshot → the rows it changes: new services, changed ones, history, gone ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from django.db import connection

from dashboard.ingest.rows import STATE_COLUMNS, ServiceRow
from dashboard.ingest.sql import (
    WRITE_BATCH,
    insert_changes,
    insert_samples,
    insert_services,
    update_services,
)
from dashboard.modelarts import (
    Snapshot,
)
from dashboard.models import (
    SEARCHED_COLUMNS,
    PollRun,
    Service,
    Source,
)

# The searched columns a poll may rewrite (a service's id never changes).
REWRITTEN_SEARCHED_COLUMNS = tuple(c for c in SEARCHED_COLUMNS if c in STATE_COLUMNS)


class TableChanged(Exception):
    """A service row changed under the poll's claim (by hand, say): the snapshot, which holds
    only the ids of services it found unchanged, cannot be written; the next poll can."""


def describe_gaps(snapshot: Snapshot) -> str:
    """Why a snapshot is incomplete, in words an operator can act on ("" when it is not)."""
    notes = []
    if snapshot.rejected:
        shown = "; ".join(snapshot.rejected[:3])
        more = f" and {len(snapshot.rejected) - 3} more" if len(snapshot.rejected) > 3 else ""
        notes.append(f"{len(snapshot.rejected)} unreadable item(s) skipped: {shown}{more}.")
    if len(set(snapshot.totals)) > 1:
        moves = " → ".join(str(total) for total in snapshot.totals)
        notes.append(f"total_count changed between pages ({moves}).")
    elif len(snapshot.services) + len(snapshot.rejected) != snapshot.total_count:
        notes.append(
            f"The API reported total_count {snapshot.total_count} but {len(snapshot.services)} "
            f"distinct services were read in {snapshot.pages} page(s)."
        )
    if snapshot.duplicates:
        notes.append(f"{snapshot.duplicates} duplicate item(s) across pages ignored.")
    if not snapshot.complete:
        notes.append("Nothing was marked gone.")
    return " ".join(notes) + (" " if notes else "")


@dataclass
class _Changes:
    new: list[ServiceRow] = field(default_factory=list)
    updated: list[tuple[int, dict]] = field(default_factory=list)
    idle: list[tuple[int, dict]] = field(default_factory=list)
    samples: list[tuple] = field(default_factory=list)
    changes: list[tuple] = field(default_factory=list)
    revived: list[int] = field(default_factory=list)  # back after being gone


class _Known(NamedTuple):
    """What the database holds of a service, enough to tell what a poll changed."""

    pk: int
    fingerprint: str
    status: str
    progress: int | None
    invocation_times: int | None
    failed_times: int | None
    calls_delta: int | None
    failures_delta: int | None
    gone_at: datetime | None


class Rewritten(NamedTuple):
    """The services a snapshot inserted or rewrote (`pks`), and those of them whose stored
    windows are not current (`fresh`: inserted now, or back after being gone)."""

    pks: list[int]
    fresh: list[int]


def write_snapshot(
    source: Source, run: PollRun, snapshot: Snapshot[ServiceRow], now: datetime
) -> Rewritten:
    """Write what the snapshot changed; the services it inserted or rewrote."""
    run.save()  # samples and status changes point at it
    previous_poll_at = source.last_success_at
    rows = Service.objects.filter(source=source).values_list("service_id", *_Known._fields)
    # Streamed: a list of 100,000 rows beside the dict made of them would be a peak of its own.
    known = {row[0]: _Known(*row[1:]) for row in rows.iterator(chunk_size=WRITE_BATCH)}
    diff = _Changes()
    storable = _storable(run, snapshot.services)
    for row in storable:
        old = known.get(row.service_id)
        if old is None and row.state is None:
            raise TableChanged(f"service {row.service_id} left the database during the poll")
        if old is None:
            diff.new.append(row)
        else:
            _diff_service(diff, run, row, old, now, previous_poll_at)

    ids = insert_services(source.pk, diff.new, now)
    diff.samples += [_sample(ids[row.service_id], row, run, now) for row in diff.new]
    if previous_poll_at is not None:
        # A service that appears after the first poll is news; the first import is not.
        diff.changes += [
            _change(ids[row.service_id], run, "", row, now, previous_poll_at) for row in diff.new
        ]
    _keep_searched_columns(diff.updated)
    update_services(diff.updated + diff.idle)
    insert_samples(diff.samples)
    insert_changes(diff.changes)

    # Every row this poll rewrote, the deltas it reset included.
    run.created_count, run.updated_count = len(diff.new), len(diff.updated) + len(diff.idle)
    if run.complete:
        # Only a complete snapshot can say a service is gone; an incomplete one marks nothing.
        seen = {row.service_id for row in storable}
        gone = [old.pk for sid, old in known.items() if sid not in seen and old.gone_at is None]
        _update_in_chunks(gone, gone_at=now)
        run.gone_count = len(gone)
    inserted = list(ids.values())
    return Rewritten([*inserted, *(pk for pk, _ in diff.updated)], [*inserted, *diff.revived])


def _storable(run: PollRun, rows: tuple[ServiceRow, ...]) -> list[ServiceRow]:
    """The rows whose id fits the column; an id that does not makes the snapshot partial."""
    limit = Service._meta.get_field("service_id").max_length
    storable = [row for row in rows if len(row.service_id) <= limit]
    if len(storable) < len(rows):
        run.complete = False
        skipped = len(rows) - len(storable)
        run.warnings += f"{skipped} service(s) with an id longer than {limit} characters skipped. "
    return storable


def _update_in_chunks(pks: list[int], **values: object) -> None:
    for start in range(0, len(pks), WRITE_BATCH):
        Service.objects.filter(pk__in=pks[start : start + WRITE_BATCH]).update(**values)


def _diff_service(
    diff: _Changes,
    run: PollRun,
    row: ServiceRow,
    old: _Known,
    now: datetime,
    previous_poll_at: datetime | None,
) -> None:
    if row.fingerprint == old.fingerprint and old.gone_at is None:
        _settle_deltas(diff, old)
        return
    if row.state is None:
        raise TableChanged(f"service {row.service_id} changed in the database during the poll")
    values = dict(zip(STATE_COLUMNS, row.state, strict=True))
    calls, failures = row.counters
    values["calls_delta"] = _delta(calls, old.invocation_times)
    values["failures_delta"] = _delta(failures, old.failed_times)
    values["gone_at"] = None
    if old.gone_at is not None:
        diff.revived.append(old.pk)
    if row.status != old.status:
        values["status_changed_at"] = now
        diff.changes.append(_change(old.pk, run, old.status, row, now, previous_poll_at))
    if row.observed != (old.status, old.progress, old.invocation_times, old.failed_times):
        diff.samples.append(_sample(old.pk, row, run, now))
    diff.updated.append((old.pk, values))


def _settle_deltas(diff: _Changes, old: _Known) -> None:
    """Unchanged counters: no calls since the previous poll, so a delta it left is no longer true.

    A known delta becomes 0; an unknown one (NULL: first seen, or the counter was reset) stays
    unknown until the counters move again. Rows already saying so are not written, so an idle
    fleet costs nothing, and an unchanged poll after the first one writes no service at all.
    """
    calls = None if old.calls_delta is None else 0
    failures = None if old.failures_delta is None else 0
    if (calls, failures) != (old.calls_delta, old.failures_delta):
        diff.idle.append((old.pk, {"calls_delta": calls, "failures_delta": failures}))


def _keep_searched_columns(updates: list[tuple[int, dict]]) -> None:
    """SQLite: leave service_name and description out of the UPDATEs that would not change them.

    Writing a searched column, even with its old value, fires the search index's update trigger,
    which re-indexes the row; a poll mostly changes counters and status. The old texts are read
    for changed rows only. (PostgreSQL's search table has a trigger that compares the old and
    new texts itself (migration 0014), and a rewritten row costs the same there whatever
    columns its UPDATE sets, so the read would buy nothing.)
    """
    if connection.vendor != "sqlite":
        return
    texts = {}
    pks = [pk for pk, _ in updates]
    for start in range(0, len(pks), WRITE_BATCH):
        chunk = Service.objects.filter(pk__in=pks[start : start + WRITE_BATCH])
        columns = chunk.values_list("pk", *REWRITTEN_SEARCHED_COLUMNS)
        texts.update((pk, rest) for pk, *rest in columns)
    for pk, values in updates:
        for name, old in zip(REWRITTEN_SEARCHED_COLUMNS, texts.get(pk, ()), strict=False):
            if values[name] == old:
                del values[name]


def _delta(new: int | None, old: int | None) -> int | None:
    if new is None or old is None or new < old:
        return None  # unknown, or the counter was reset
    return new - old


def _sample(service_pk: int, row: ServiceRow, run: PollRun, now: datetime) -> tuple:
    return (service_pk, run.pk, now, *row.observed)


def _change(
    service_pk: int,
    run: PollRun,
    from_status: str,
    row: ServiceRow,
    now: datetime,
    previous_poll_at: datetime | None,
) -> tuple:
    return (
        service_pk, run.source_id, run.pk, now, previous_poll_at, from_status, row.status,
        row.transition_at,
    )  # fmt: skip
