"""The poller's loop: poll each enabled source when it is due or someone asked for a poll."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from django.db import close_old_connections
from django.utils import timezone

from dashboard.ingest.claims import SourceBusy
from dashboard.ingest.details import fetch_details
from dashboard.ingest.poll import poll_source
from dashboard.ingest.retention import prune_history
from dashboard.models import PollRun, Source

# A page's "Refresh now" waits at most this long for the loop to notice it.
TICK_SECONDS = 0.5
ERROR_PAUSE_SECONDS = 5
PRUNE_EVERY_SECONDS = 3600
log = logging.getLogger(__name__)


def enabled_sources(name: str | None = None) -> list[Source]:
    sources = Source.objects.filter(enabled=True)
    return list(sources.filter(name=name) if name else sources)


def describe(run: PollRun) -> str:
    if run.ok:
        note = "" if run.complete else " (incomplete)"
        return (
            f"{run.source.name}: {run.fetched_count} services{note}, {run.created_count} new, "
            f"{run.updated_count} changed, {run.gone_count} gone in {run.duration_ms} ms"
        )
    return f"{run.source.name}: poll failed ({run.error_kind}): {run.error_message}"


# Called with each finished poll, ok or not (the poll_services command evaluates alerts).
AfterPoll = Callable[[PollRun], None]


def poll_forever(
    stop: threading.Event,
    report: Callable[[str], None],
    *,
    source_name: str | None = None,
    after_poll: AfterPoll | None = None,
) -> None:
    """Poll each source whenever it is due or asked for, until `stop` is set.

    Sleeps in short steps so a stop is quick and a request is picked up at once. Several
    pollers may run at once: each poll claims its source in the database first, due-check
    included, so none is polled twice.
    """
    next_prune = time.monotonic()
    while not stop.is_set():
        try:
            # A long-lived process: connections the database dropped are replaced each round.
            close_old_connections()
            run_due_polls(report, source_name, stop=stop, after_poll=after_poll)
            if time.monotonic() >= next_prune:
                # Every poller prunes now and then; deletes of the same old rows are harmless.
                prune_history()
                next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
        except Exception:
            # The outermost loop: a database restart or a lock timeout must not end the
            # poller; it says so in the log and tries again on the next round.
            log.exception("polling round failed; retrying")
            stop.wait(ERROR_PAUSE_SECONDS)
        stop.wait(TICK_SECONDS)


def run_due_polls(
    report: Callable[[str], None],
    name: str | None = None,
    *,
    stop: threading.Event | None = None,
    after_poll: AfterPoll | None = None,
) -> None:
    """One round: poll every source that is due, or that a page asked to poll now."""
    now = timezone.now()
    for source in enabled_sources(name):
        if stop is not None and stop.is_set():
            return
        requested = source.poll_requested_at is not None
        polled = False
        if requested or source.is_due(now):
            # Busy: another poller has it, or has just polled it (or taken the request).
            with contextlib.suppress(SourceBusy):
                run = poll_source(source, only_if_due=not requested, requested=requested)
                report(describe(run))
                if after_poll is not None:
                    after_poll(run)
                polled = run.ok
        # After a poll, the unhealthy services' details within the budget; between polls,
        # only those a page asked for.
        fetched = fetch_details(source, asked_only=not polled)
        if fetched.services:
            report(
                f"{source.name}: detail of {fetched.services} service(s) fetched"
                + (f", {fetched.failed} failed" if fetched.failed else "")
            )
