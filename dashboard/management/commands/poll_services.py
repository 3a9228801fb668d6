"""The production poller: polls every enabled source on its interval until told to stop."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections
from django.utils import timezone

from dashboard import polling
from dashboard.models import PollRun, Source
from dashboard.retention import prune_history
from dashboard.sources import sync_env_source

TICK_SECONDS = 0.5
ERROR_PAUSE_SECONDS = 5
PRUNE_EVERY_SECONDS = 3600
log = logging.getLogger(__name__)


def enabled_sources(name: str | None) -> list[Source]:
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


def poll_forever(
    stop: threading.Event, report: Callable[[str], None], *, source_name: str | None = None
) -> None:
    """Poll each source whenever it is due, until `stop` is set.

    Sleeps in short steps so a stop is quick. Several pollers may run at once: each poll
    claims its source in the database first, due-check included, so none is polled twice.
    """
    next_prune = time.monotonic()
    while not stop.is_set():
        try:
            _poll_due(stop, report, source_name)
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


def _poll_due(stop: threading.Event, report: Callable[[str], None], name: str | None) -> None:
    close_old_connections()
    now = timezone.now()
    for source in enabled_sources(name):
        if stop.is_set():
            return
        # Busy: another poller has it, or has just polled it.
        if source.is_due(now):
            with contextlib.suppress(polling.SourceBusy):
                report(describe(polling.poll_source(source, only_if_due=True)))


class Command(BaseCommand):
    help = "Poll ModelArts sources into the database: every enabled source on its interval."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="poll each source once and exit")
        parser.add_argument(
            "--interval",
            type=int,
            help="seconds between polls; saved as the interval of the sources polled, so "
            "every page judges freshness by it",
        )
        parser.add_argument("--source", help="poll only the source with this name")

    def handle(self, *args, once: bool, interval: int | None, source: str | None, **options):
        if interval is not None and interval < 1:
            raise CommandError("--interval must be at least 1 second")
        sync_env_source()
        if not Source.objects.filter(enabled=True).exists():
            raise CommandError(
                "no source to poll: set MODELARTS_ENDPOINT, MODELARTS_PROJECT_ID and "
                "MODELARTS_TOKEN, or add a source in the admin"
            )
        if source and not Source.objects.filter(name=source).exists():
            raise CommandError(f"no source named {source!r}")
        if interval is not None:
            chosen = Source.objects.filter(name=source) if source else Source.objects.all()
            chosen.update(interval_seconds=interval)
        if once:
            self._poll_once(source)
            return
        stop = threading.Event()
        # Signals only set a flag: the current poll finishes its transaction, then we exit.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write("polling; stop with Ctrl-C or SIGTERM")
        poll_forever(stop, self.stdout.write, source_name=source)
        self.stdout.write("stopped")

    def _poll_once(self, name: str | None) -> None:
        failed = 0
        for source in enabled_sources(name):  # due or not: --once polls now
            try:
                run = polling.poll_source(source)
            except polling.SourceBusy as exc:
                self.stdout.write(str(exc))
                continue
            self.stdout.write(describe(run))
            failed += not run.ok
        if failed:
            raise CommandError(f"{failed} poll(s) failed")
