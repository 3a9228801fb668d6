"""One poll of one source: fetch every page, then write one snapshot in one transaction.

No loops and no sleeps here: the scheduler (and `poll_services --once`) call poll_source.
"""

from __future__ import annotations

import logging
import time

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from dashboard.ingest.claims import SourceBusy, claim, poll_budget, release, why_busy
from dashboard.ingest.collector import collector_paused
from dashboard.ingest.credentials import SourceConfigError, build_client
from dashboard.ingest.exposition import render_exposition
from dashboard.ingest.rows import RowMaker, ServiceRow
from dashboard.ingest.snapshot import TableChanged, describe_gaps, write_snapshot
from dashboard.ingest.sql import WRITE_BATCH, resample_if_grown, write_cache
from dashboard.ingest.windows import keep_windows
from dashboard.modelarts import (
    APIError,
    ModelArtsClient,
    ModelArtsError,
    ResponseError,
    ServiceQuery,
    Snapshot,
    TransportError,
)
from dashboard.models import (
    PollRun,
    Service,
    Source,
)

log = logging.getLogger(__name__)


class ClaimLost(Exception):
    """The claim expired while polling: the snapshot must not be written."""


def poll_source(
    source: Source,
    *,
    client: ModelArtsClient | None = None,
    only_if_due: bool = False,
    requested: bool = False,
) -> PollRun:
    """Poll one source once and record the outcome.

    Raises SourceBusy, saying why, when another poller holds the source, or (only_if_due) it
    was polled too recently, or (requested) another poller took the page's request first.
    """
    token = claim(source, only_if_due=only_if_due, requested=requested)
    if token is None:
        raise SourceBusy(why_busy(source))
    try:
        source.refresh_from_db()  # what the previous poll left, as of now
        return _poll_claimed(source, client, token)
    finally:
        release(source, token)


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
    run.warnings = describe_gaps(snapshot)
    with transaction.atomic(), write_cache():
        _check_claim(source, token)
        rewritten = write_snapshot(source, run, snapshot, run.started_at)
        keep_windows(source, run.started_at, rewritten.pks, fresh=rewritten.fresh)
        render_exposition(source, run)
        _finish(source, run, clock, ok=True)
    resample_if_grown(len(rewritten.fresh))


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
