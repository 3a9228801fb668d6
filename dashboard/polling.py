"""One poll of one source: fetch every page, then write one snapshot in one transaction.

No loops and no sleeps here: the poll_services command and the refresh view call poll_source.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from dashboard.collector import collector_paused
from dashboard.modelarts import (
    AkSkAuth,
    APIError,
    IamPasswordAuth,
    ModelArtsClient,
    ModelArtsError,
    NoAuth,
    ResponseError,
    ServiceQuery,
    Snapshot,
    TokenAuth,
    TransportError,
)
from dashboard.modelarts.auth import Auth
from dashboard.models import (
    SEARCHED_COLUMNS,
    SECRET_ENV_PREFIXES,
    PollRun,
    Service,
    Source,
)
from dashboard.service_rows import (
    STATE_COLUMNS,
    WRITE_BATCH,
    RowMaker,
    ServiceRow,
    insert_changes,
    insert_samples,
    insert_services,
    update_services,
    write_cache,
)

log = logging.getLogger(__name__)

# A claim outlives a crashed poller by this much at most; a live poll finishes well before.
CLAIM_SLACK = timedelta(minutes=2)
# The searched columns a poll may rewrite (a service's id never changes).
REWRITTEN_SEARCHED_COLUMNS = tuple(c for c in SEARCHED_COLUMNS if c in STATE_COLUMNS)
# One identity per process, so a claim names who holds it.
POLLER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class SourceConfigError(Exception):
    """A source that cannot be polled as configured (a missing secret, say)."""


class SourceBusy(Exception):
    """Another poller holds this source's claim, or it was polled a moment ago."""


class ClaimLost(Exception):
    """The claim expired while polling: the snapshot must not be written."""


class TableChanged(Exception):
    """A service row changed under the poll's claim (by hand, say): the snapshot, which holds
    only the ids of services it found unchanged, cannot be written; the next poll can."""


def build_client(source: Source) -> ModelArtsClient:
    """The client for a source, its secrets read from the environment variables it names."""
    auth = _auth_for(source)
    project_id = source.project_id
    if not project_id and isinstance(auth, IamPasswordAuth):
        project_id = auth.scoped_project_id() or ""  # the token says which project it is for
    try:
        return ModelArtsClient(
            source.endpoint,
            project_id,
            auth,
            timeout=settings.MODELARTS_TIMEOUT,
            offset_mode=source.offset_mode,
        )
    except ValueError as exc:
        raise SourceConfigError(f"source {source.name!r}: {exc}") from exc


def _auth_for(source: Source) -> Auth:
    kind = source.auth_kind
    if kind == Source.AuthKind.AKSK:
        return AkSkAuth(
            _secret(source, "ak_env", "access key (AK)"),
            _secret(source, "sk_env", "secret key (SK)"),
            security_token=_secret(source, "security_token_env", "security token", needed=False),
            project_id=source.project_id or None,
        )
    if kind == Source.AuthKind.TOKEN:
        return TokenAuth(_secret(source, "token_env", "IAM token"))
    if kind == Source.AuthKind.IAM_PASSWORD:
        return _iam_auth(source, _secret(source, "password_env", "IAM password"))
    if kind == Source.AuthKind.NONE:
        return NoAuth()
    raise SourceConfigError(f"source {source.name!r}: unknown authentication {kind!r}")


# One IAM login per source and process, reused until it is renewed: IAM tokens last a day, and
# logging in on every poll would look like an attack to IAM. Keyed by everything the login
# uses (the password by its hash), so a changed setting logs in afresh.
_iam_auths: dict[tuple, tuple[str, IamPasswordAuth]] = {}
_iam_lock = threading.Lock()


def _iam_auth(source: Source, password: str) -> IamPasswordAuth:
    fingerprint = hashlib.sha256(password.encode()).hexdigest()
    key = (source.pk, source.iam_endpoint, source.iam_domain, source.iam_username, source.region)
    with _iam_lock:
        cached = _iam_auths.get(key)
        if cached is None or cached[0] != fingerprint:
            auth = IamPasswordAuth(
                source.iam_endpoint,
                source.iam_domain,
                source.iam_username,
                password,
                source.region,
                timeout=settings.MODELARTS_TIMEOUT,
            )
            _iam_auths[key] = cached = (fingerprint, auth)
        return cached[1]


def _secret(source: Source, field_name: str, what: str, *, needed: bool = True) -> str | None:
    variable = getattr(source, field_name)
    if variable and not variable.startswith(SECRET_ENV_PREFIXES):
        raise SourceConfigError(
            f"source {source.name!r}: {field_name} must name a variable starting with "
            f"{' or '.join(SECRET_ENV_PREFIXES)}, not {variable!r}"
        )
    value = os.environ.get(variable, "").strip() if variable else ""
    if not value and not needed:
        return None
    if not value:
        raise SourceConfigError(
            f"environment variable {variable or '(none named)'} holding the {what} "
            f"for source {source.name!r} is not set"
        )
    return value


def poll_budget(source: Source) -> float:
    """Seconds one poll of the source may spend fetching: always less than its interval."""
    return max(5.0, 0.8 * source.interval_seconds)


def claim(source: Source, *, only_if_due: bool = False, min_gap: float = 0) -> str | None:
    """Take the source for one poll; the claim's token, or None if that is not possible now.

    A conditional UPDATE is atomic on every database, so two pollers (or a poller and a
    "refresh now" click) can never both win. The lease outlives the longest a live poll can
    take (its budget plus a request in flight), so only a crashed poller's claim expires.
    """
    now = timezone.now()
    token = f"{POLLER_ID}:{uuid.uuid4().hex[:8]}"
    lease = timedelta(seconds=poll_budget(source) + 2 * settings.MODELARTS_TIMEOUT + 60)
    free = Source.objects.filter(pk=source.pk).filter(
        Q(claim_expires_at__isnull=True) | Q(claim_expires_at__lt=now)
    )
    gap = source.interval_seconds if only_if_due else min_gap
    if gap:
        # Checked in the same UPDATE, so a poll that just finished is not repeated.
        since = now - timedelta(seconds=gap)
        free = free.filter(Q(last_poll_at__isnull=True) | Q(last_poll_at__lte=since))
    won = free.update(claimed_by=token, claim_expires_at=now + lease)
    return token if won else None


def release(source: Source, token: str) -> None:
    Source.objects.filter(pk=source.pk, claimed_by=token).update(
        claimed_by="", claim_expires_at=None
    )
    # The caller's object too: saved later, it must not write the old claim back.
    if source.claimed_by == token:
        source.claimed_by, source.claim_expires_at = "", None


def poll_source(
    source: Source,
    *,
    client: ModelArtsClient | None = None,
    only_if_due: bool = False,
    min_gap: float = 0,
) -> PollRun:
    """Poll one source once and record the outcome.

    Raises SourceBusy, saying why, when another poller holds the source or (with only_if_due
    or min_gap) it was polled too recently.
    """
    token = claim(source, only_if_due=only_if_due, min_gap=min_gap)
    if token is None:
        raise SourceBusy(_why_busy(source))
    try:
        source.refresh_from_db()  # what the previous poll left, as of now
        return _poll_claimed(source, client, token)
    finally:
        release(source, token)


def _why_busy(source: Source) -> str:
    source.refresh_from_db()
    if source.claim_expires_at and source.claim_expires_at > timezone.now():
        return f"{source.name}: a poll is already running"
    return f"{source.name}: polled {_seconds_ago(source.last_poll_at)} s ago"


def _seconds_ago(moment: datetime | None) -> int:
    return int((timezone.now() - moment).total_seconds()) if moment else 0


def _poll_claimed(source: Source, client: ModelArtsClient | None, token: str) -> PollRun:
    started_at = timezone.now()
    clock = time.monotonic()
    run = PollRun(source=source, started_at=started_at, poller=token)
    try:
        with collector_paused():
            _fetch_and_write(source, client, token, run, clock)
    except (ModelArtsError, SourceConfigError, ClaimLost, TableChanged) as exc:
        _record_failure(source, run, clock, _error_kind(exc), str(exc))
    except Exception as exc:
        # The outermost boundary of one poll: whatever went wrong becomes a failed PollRun
        # shown to users (with the traceback in the log) instead of an exception that escapes.
        log.exception("poll of source %s failed unexpectedly", source.name)
        _record_failure(source, run, clock, "internal", f"internal error: {type(exc).__name__}")
    return run


def _fetch_and_write(
    source: Source, client: ModelArtsClient | None, token: str, run: PollRun, clock: float
) -> None:
    snapshot = _fetch(source, client)
    run.pages, run.total_count = snapshot.pages, snapshot.total_count
    run.fetched_count, run.complete = len(snapshot.services), snapshot.complete
    run.warnings = _describe_gaps(snapshot)
    with transaction.atomic(), write_cache():
        _check_claim(source, token)
        _write_snapshot(source, run, snapshot, run.started_at)
        _finish(source, run, clock, ok=True)


def _describe_gaps(snapshot: Snapshot) -> str:
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


def _check_claim(source: Source, token: str) -> None:
    """Inside the write transaction: still ours? Otherwise a newer poll may have written."""
    if not Source.objects.select_for_update().filter(pk=source.pk, claimed_by=token).exists():
        raise ClaimLost(
            f"{source.name}: the poll outlived its claim and another poller took over; "
            "its snapshot was discarded"
        )


def _fetch(source: Source, client: ModelArtsClient | None) -> Snapshot[ServiceRow]:
    query = ServiceQuery(workspace_id=source.workspace_id or None)
    # Retries and slow pages stop here, so a poll always ends before the next one is due.
    deadline = time.monotonic() + poll_budget(source)
    # Each record becomes a compact row as its page arrives, an unchanged one a mere stand-in.
    live = Service.objects.filter(source=source, gone_at=None).values_list(
        "service_id", "fingerprint"
    )
    keep = RowMaker(live.iterator(chunk_size=WRITE_BATCH))
    if client is not None:
        return client.fetch_all(query, deadline=deadline, keep=keep)
    with build_client(source) as own_client:
        return own_client.fetch_all(query, deadline=deadline, keep=keep)


def _error_kind(exc: Exception) -> str:
    if isinstance(exc, TransportError):
        return "unreachable"
    if isinstance(exc, APIError):
        return "api-error"
    if isinstance(exc, ResponseError):
        return "bad-response"
    if isinstance(exc, ClaimLost):
        return "claim-lost"
    if isinstance(exc, TableChanged):
        return "conflict"
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
        fields["last_poll_complete"] = run.complete
    else:
        fields.update(failures_since_success=F("failures_since_success") + 1)
        fields["last_error"] = run.error_message
    Source.objects.filter(pk=source.pk).update(**fields)
    source.refresh_from_db(fields=[*fields, "failures_since_success"])


@dataclass
class _Changes:
    new: list[ServiceRow] = field(default_factory=list)
    updated: list[tuple[int, dict]] = field(default_factory=list)
    idle: list[tuple[int, dict]] = field(default_factory=list)
    samples: list[tuple] = field(default_factory=list)
    changes: list[tuple] = field(default_factory=list)


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


def _write_snapshot(
    source: Source, run: PollRun, snapshot: Snapshot[ServiceRow], now: datetime
) -> None:
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
    for changed rows only. (PostgreSQL's trigram indexes take a new entry for any rewritten
    row whose counters are indexed, so the read would buy nothing there.)
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
