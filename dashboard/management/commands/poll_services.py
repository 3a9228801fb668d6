"""The production poller: polls every enabled source on its interval until told to stop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections
from django.utils import timezone

from dashboard import polling
from dashboard.models import PollRun, Source
from dashboard.sources import sync_env_source

TICK_SECONDS = 0.5


def due_sources(name: str | None, interval: int | None) -> list[Source]:
    sources = Source.objects.filter(enabled=True)
    if name:
        sources = sources.filter(name=name)
    now = timezone.now()
    due = []
    for source in sources:
        if interval is not None:
            source.interval_seconds = interval
        if source.is_due(now):
            due.append(source)
    return due


def describe(run: PollRun) -> str:
    if run.ok:
        note = "" if run.complete else " (incomplete)"
        return (
            f"{run.source.name}: {run.fetched_count} services{note}, {run.created_count} new, "
            f"{run.updated_count} changed, {run.gone_count} gone in {run.duration_ms} ms"
        )
    return f"{run.source.name}: poll failed ({run.error_kind}): {run.error_message}"


def poll_forever(
    stop: threading.Event,
    report: Callable[[str], None],
    *,
    source_name: str | None = None,
    interval: int | None = None,
) -> None:
    """Poll due sources until `stop` is set; sleeps in short steps so a stop is quick."""
    while not stop.is_set():
        close_old_connections()
        for source in due_sources(source_name, interval):
            if stop.is_set():
                break
            try:
                report(describe(polling.poll_source(source)))
            except polling.SourceBusy as exc:
                report(str(exc))
        stop.wait(TICK_SECONDS)


class Command(BaseCommand):
    help = "Poll ModelArts sources into the database: every enabled source on its interval."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="poll each source once and exit")
        parser.add_argument(
            "--interval", type=int, help="seconds between polls of each source (overrides theirs)"
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
        if once:
            self._poll_once(source)
            return
        stop = threading.Event()
        # Signals only set a flag: the current poll finishes its transaction, then we exit.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write("polling; stop with Ctrl-C or SIGTERM")
        poll_forever(stop, self.stdout.write, source_name=source, interval=interval)
        self.stdout.write("stopped")

    def _poll_once(self, name: str | None) -> None:
        sources = Source.objects.filter(enabled=True)
        if name:
            sources = sources.filter(name=name)
        failed = 0
        for source in sources:  # due or not: --once polls now
            run = polling.poll_source(source)
            self.stdout.write(describe(run))
            failed += not run.ok
        if failed:
            raise CommandError(f"{failed} poll(s) failed")
