"""One poll of one source: fetch every page, then write one snapshot in one transaction.

No loops and no sleeps here: the poll_services command and the refresh view call poll_source.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from dashboard.modelarts import (
    APIError,
    ModelArtsClient,
    ModelArtsError,
    NoAuth,
    ResponseError,
    ServiceQuery,
    ServiceRecord,
    Snapshot,
    TokenAuth,
    TransportError,
)
from dashboard.modelarts.auth import Auth
from dashboard.models import PollRun, Service, ServiceSample, Source, StatusChange
from dashboard.statuses import severity

log = logging.getLogger(__name__)

# A claim outlives a crashed poller by this much at most; a live poll finishes well before.
CLAIM_SLACK = timedelta(minutes=2)
WRITE_BATCH = 1000
# One identity per process, so a claim names who holds it.
POLLER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class SourceConfigError(Exception):
    """A source that cannot be polled as configured (a missing secret, say)."""


class SourceBusy(Exception):
    """Another poller holds this source's claim."""


def build_client(source: Source) -> ModelArtsClient:
    """The client for a source, its secrets read from the environment variables it names."""
    auth = _auth_for(source)
    try:
        return ModelArtsClient(
            source.endpoint,
            source.project_id,
            auth,
            timeout=settings.MODELARTS_TIMEOUT,
            offset_mode=source.offset_mode,
        )
    except ValueError as exc:
        raise SourceConfigError(f"source {source.name!r}: {exc}") from exc


def _auth_for(source: Source) -> Auth:
    kind = source.auth_kind
    if kind == Source.AuthKind.TOKEN:
        return TokenAuth(_secret(source, "token_env", "IAM token"))
    if kind == Source.AuthKind.NONE:
        return NoAuth()
    raise SourceConfigError(f"source {source.name!r}: authentication {kind!r} is not supported")


def _secret(source: Source, field_name: str, what: str) -> str:
    variable = getattr(source, field_name)
    value = os.environ.get(variable, "").strip() if variable else ""
    if not value:
        raise SourceConfigError(
            f"environment variable {variable or '(none named)'} holding the {what} "
            f"for source {source.name!r} is not set"
        )
    return value


def claim(source: Source, now: datetime | None = None) -> bool:
    """Take the source for one poll, unless someone else holds an unexpired claim.

    A conditional UPDATE is atomic on every database, so two pollers (or a poller and a
    "refresh now" click) can never both win.
    """
    now = now or timezone.now()
    expires = now + timedelta(seconds=settings.MODELARTS_TIMEOUT * 4) + CLAIM_SLACK
    won = (
        Source.objects.filter(pk=source.pk)
        .filter(Q(claim_expires_at__isnull=True) | Q(claim_expires_at__lt=now))
        .update(claimed_by=POLLER_ID, claim_expires_at=expires)
    )
    return won == 1


def release(source: Source) -> None:
    Source.objects.filter(pk=source.pk, claimed_by=POLLER_ID).update(
        claimed_by="", claim_expires_at=None
    )


def poll_source(source: Source, *, client: ModelArtsClient | None = None) -> PollRun:
    """Poll one source once and record the outcome. Raises SourceBusy if it is claimed."""
    if not claim(source):
        raise SourceBusy(f"source {source.name!r} is being polled by another process")
    try:
        return _poll_claimed(source, client)
    finally:
        release(source)


def _poll_claimed(source: Source, client: ModelArtsClient | None) -> PollRun:
    started_at = timezone.now()
    clock = time.monotonic()
    run = PollRun(source=source, started_at=started_at)
    try:
        snapshot = _fetch(source, client)
        run.pages, run.total_count = snapshot.pages, snapshot.total_count
        run.fetched_count, run.complete = len(snapshot.services), snapshot.complete
        with transaction.atomic():
            _write_snapshot(source, run, snapshot, started_at)
            _finish(source, run, clock, ok=True)
    except (ModelArtsError, SourceConfigError) as exc:
        _record_failure(source, run, clock, _error_kind(exc), str(exc))
    except Exception as exc:
        # The outermost boundary of one poll: whatever went wrong becomes a failed PollRun
        # shown to users (with the traceback in the log) instead of an exception that escapes.
        log.exception("poll of source %s failed unexpectedly", source.name)
        _record_failure(source, run, clock, "internal", f"internal error: {type(exc).__name__}")
    return run


def _fetch(source: Source, client: ModelArtsClient | None) -> Snapshot:
    query = ServiceQuery(workspace_id=source.workspace_id or None)
    if client is not None:
        return client.fetch_all(query)
    with build_client(source) as own_client:
        return own_client.fetch_all(query)


def _error_kind(exc: Exception) -> str:
    if isinstance(exc, TransportError):
        return "unreachable"
    if isinstance(exc, APIError):
        return "api-error"
    if isinstance(exc, ResponseError):
        return "bad-response"
    return "config"


def _record_failure(source: Source, run: PollRun, clock: float, kind: str, message: str) -> None:
    log.warning("poll of source %s failed: %s", source.name, message)
    run.ok, run.error_kind, run.error_message = False, kind, message
    # A failed poll touches only its own PollRun and the source's freshness columns: the last
    # good snapshot stays exactly as it was.
    with transaction.atomic():
        _finish(source, run, clock, ok=False)


def _finish(source: Source, run: PollRun, clock: float, *, ok: bool) -> None:
    run.ok = ok
    run.finished_at = timezone.now()
    run.duration_ms = round((time.monotonic() - clock) * 1000)
    run.save()
    fields = {"last_poll_at": run.started_at}
    if ok:
        fields.update(last_success_at=run.started_at, failures_since_success=0, last_error="")
    else:
        fields.update(failures_since_success=F("failures_since_success") + 1)
        fields["last_error"] = run.error_message
    Source.objects.filter(pk=source.pk).update(**fields)
    source.refresh_from_db(
        fields=["last_poll_at", "last_success_at", "failures_since_success", "last_error"]
    )


@dataclass
class _Changes:
    new: list[Service] = field(default_factory=list)
    updated: list[tuple[int, dict]] = field(default_factory=list)
    samples: list[ServiceSample] = field(default_factory=list)
    changes: list[StatusChange] = field(default_factory=list)


def _write_snapshot(source: Source, run: PollRun, snapshot: Snapshot, now: datetime) -> None:
    run.save()  # samples and status changes point at it
    previous_poll_at = source.last_success_at
    known = {
        row[0]: row[1:]
        for row in Service.objects.filter(source=source).values_list(
            "service_id", "id", "fingerprint", "status", "progress", "invocation_times",
            "failed_times", "calls_delta", "failures_delta", "gone_at",
        )
    }  # fmt: skip
    diff = _Changes()
    for record in snapshot.services:
        row = known.get(record.service_id)
        if row is None:
            diff.new.append(_new_service(source, record, now))
        else:
            _diff_service(diff, source, run, record, row, now, previous_poll_at)

    Service.objects.bulk_create(diff.new, batch_size=WRITE_BATCH)
    diff.samples += [_sample(service, run, now) for service in diff.new]
    if previous_poll_at is not None:
        # A service that appears after the first poll is news; the first import is not.
        diff.changes += [_change(s, run, "", now, previous_poll_at) for s in diff.new]
    _update_rows(diff.updated)
    ServiceSample.objects.bulk_create(diff.samples, batch_size=WRITE_BATCH)
    StatusChange.objects.bulk_create(diff.changes, batch_size=WRITE_BATCH)

    run.created_count, run.updated_count = len(diff.new), len(diff.updated)
    if snapshot.complete:
        # Only a complete snapshot can say a service is gone; an incomplete one marks nothing.
        seen = {record.service_id for record in snapshot.services}
        gone = [row[0] for sid, row in known.items() if sid not in seen and row[-1] is None]
        for start in range(0, len(gone), WRITE_BATCH):
            Service.objects.filter(pk__in=gone[start : start + WRITE_BATCH]).update(gone_at=now)
        run.gone_count = len(gone)


def _diff_service(
    diff: _Changes,
    source: Source,
    run: PollRun,
    record: ServiceRecord,
    row: tuple,
    now: datetime,
    previous_poll_at: datetime | None,
) -> None:
    pk, fingerprint, old_status, old_progress, old_calls, old_failures, *old_deltas, gone_at = row
    new_fingerprint = fingerprint_of(record)
    if new_fingerprint == fingerprint and gone_at is None:
        if any(old_deltas):
            # Unchanged counters mean no calls since the previous poll.
            diff.updated.append((pk, {"calls_delta": 0, "failures_delta": 0}))
        return
    values = _state(record, new_fingerprint)
    values["calls_delta"] = _delta(record.invocation_times, old_calls)
    values["failures_delta"] = _delta(record.failed_times, old_failures)
    values["gone_at"] = None
    service = Service(pk=pk, source=source, service_id=record.service_id, **values)
    if record.status != old_status:
        values["status_changed_at"] = now
        diff.changes.append(_change(service, run, old_status, now, previous_poll_at))
    observed = (record.status, record.progress, record.invocation_times, record.failed_times)
    if observed != (old_status, old_progress, old_calls, old_failures):
        diff.samples.append(_sample(service, run, now))
    diff.updated.append((pk, values))


def _new_service(source: Source, record: ServiceRecord, now: datetime) -> Service:
    values = _state(record, fingerprint_of(record))
    return Service(
        source=source,
        service_id=record.service_id,
        first_seen_at=now,
        status_changed_at=record.transition_at,
        **values,
    )


def _state(record: ServiceRecord, fingerprint: str) -> dict:
    return {
        "service_name": record.service_name,
        "description": record.description,
        "tenant": record.tenant,
        "project": record.project,
        "owner": record.owner,
        "publish_at": record.publish_at,
        "infer_type": record.infer_type,
        "workspace_id": record.workspace_id,
        "status": record.status,
        "progress": record.progress,
        "invocation_times": record.invocation_times,
        "failed_times": record.failed_times,
        "is_shared": record.is_shared,
        "shared_count": record.shared_count,
        "schedule": [vars(item) for item in record.schedule],
        "due_time": record.due_time,
        "start_time": record.start_time,
        "finished_time": record.finished_time,
        "operation_time": record.operation_time,
        "transition_at": record.transition_at,
        "is_opened_sample_collection": record.is_opened_sample_collection,
        "is_free": record.is_free,
        "additional_properties": record.additional_properties,
        "raw": record.raw,
        "fingerprint": fingerprint,
        "severity": severity(record.status),
        "failure_rate": _rate(record.failed_times, record.invocation_times),
    }


def fingerprint_of(record: ServiceRecord) -> str:
    # operation_time is "the time of the current request": it differs on every poll.
    item = {key: value for key, value in record.raw.items() if key != "operation_time"}
    encoded = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(encoded.encode(), digest_size=16).hexdigest()


def _rate(failures: int | None, calls: int | None) -> float | None:
    if not calls or failures is None:
        return None
    return failures / calls


def _delta(new: int | None, old: int | None) -> int | None:
    if new is None or old is None or new < old:
        return None  # unknown, or the counter was reset
    return new - old


def _sample(service: Service, run: PollRun, now: datetime) -> ServiceSample:
    return ServiceSample(
        service_id=service.pk,
        poll_run=run,
        at=now,
        status=service.status,
        progress=service.progress,
        invocation_times=service.invocation_times,
        failed_times=service.failed_times,
    )


def _change(
    service: Service,
    run: PollRun,
    from_status: str,
    now: datetime,
    previous_poll_at: datetime | None,
) -> StatusChange:
    return StatusChange(
        service_id=service.pk,
        source_id=service.source_id,
        poll_run=run,
        at=now,
        previous_poll_at=previous_poll_at,
        from_status=from_status,
        to_status=service.status,
        transition_at=service.transition_at,
    )


def _update_rows(updates: list[tuple[int, dict]]) -> None:
    """UPDATE … WHERE id = %s with executemany, grouped by the set of columns written.

    Django's bulk_update builds one CASE per column, which grows quadratically slow on large
    batches; plain executemany stays linear on SQLite and pipelines on PostgreSQL.
    """
    groups: dict[tuple[str, ...], list[tuple]] = {}
    for pk, values in updates:
        names = tuple(sorted(values))
        groups.setdefault(names, []).append(
            (*(_db_value(name, values[name]) for name in names), pk)
        )
    table = connection.ops.quote_name(Service._meta.db_table)
    with connection.cursor() as cursor:
        for names, rows in groups.items():
            assignments = ", ".join(f"{connection.ops.quote_name(n)} = %s" for n in names)
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE id = %s", rows)


def _db_value(name: str, value: object) -> object:
    return Service._meta.get_field(name).get_db_prep_save(value, connection)
