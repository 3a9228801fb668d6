"""The production poller: polls every enabled source on its interval until told to stop."""

from __future__ import annotations

import signal
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from dashboard.alerts import outbox
from dashboard.alerts.engine import after_poll
from dashboard.alerts.outbox import send_forever
from dashboard.ingest import poll as polling
from dashboard.ingest.details import fetch_details
from dashboard.ingest.scheduler import describe, enabled_sources, poll_forever
from dashboard.ingest.sources import sync_env_source
from dashboard.models import PollRun, Source

# --once waits at most this long for its alerts to be delivered: longer than the claim a killed
# poller left on a message it was sending, so that message goes too.
ONCE_SEND_SECONDS = outbox.LEASE.total_seconds() + 30


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
        if settings.DASHBOARD_ALERTS_FILE:
            call_command("apply_alerts", settings.DASHBOARD_ALERTS_FILE, stdout=self.stdout)
        if once:
            self._poll_once(source)
            return
        stop = threading.Event()
        # Signals only set a flag: the current poll finishes its transaction, then we exit.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write("polling; stop with Ctrl-C or SIGTERM")
        # Alerts go out from a thread of their own: a slow receiver never delays a poll.
        sender = threading.Thread(target=send_forever, args=(stop,), name="alerts", daemon=True)
        sender.start()
        poll_forever(stop, self.stdout.write, source_name=source, after_poll=self._alert)
        sender.join(timeout=outbox.DELIVERY_TIMEOUT + 5)
        self.stdout.write("stopped")

    def _alert(self, run: PollRun) -> None:
        outcome = after_poll(run)
        if outcome.messages or outcome.fired or outcome.resolved:
            self.stdout.write(f"{run.source.name}: {outcome}")

    def _poll_once(self, name: str | None) -> None:
        failed = 0
        for source in enabled_sources(name):  # due or not: --once polls now
            try:
                run = polling.poll_source(source)
            except polling.SourceBusy as exc:
                self.stdout.write(str(exc))
                continue
            self.stdout.write(describe(run))
            self._alert(run)
            if run.ok:
                fetch_details(source)
            failed += not run.ok
        # What the polls raised goes out before the command ends (cron runs it and leaves).
        sent = outbox.send_pending(deadline=time.monotonic() + ONCE_SEND_SECONDS)
        if sent:
            self.stdout.write(f"alerts: {sent} message(s) sent")
        if failed:
            raise CommandError(f"{failed} poll(s) failed")
