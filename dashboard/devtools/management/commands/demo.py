"""Simulator, poller and dashboard in one process: the laptop demo behind `make run`."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import threading

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from dashboard.alerts.engine import after_poll
from dashboard.alerts.outbox import send_forever
from dashboard.devtools.receiver import AlertReceiver
from dashboard.devtools.simulator import Fleet, SimulatorServer
from dashboard.ingest.scheduler import poll_forever
from dashboard.models import AlertChannel, AlertRule, Source
from dashboard.web.accounts import create_user

DEMO_SOURCE = "demo"
DEMO_USER = "demo"
DEMO_PROJECT_ID = "0d3m0000000000000000000000000000"
# The demo's token lives only in this process's environment, like a real one would.
TOKEN_ENV = "MODELARTS_DEMO_TOKEN"
DEMO_CHANNEL = "demo-receiver"
# The demo receiver checks every message's signature with this (a Standard Webhooks secret).
WEBHOOK_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class Command(BaseCommand):
    help = "Start a simulated ModelArts API, a poller and the dashboard together."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--services", type=int, default=60, help="size of the simulated fleet")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--interval", type=int, default=10, help="seconds between polls")

    def handle(self, *args, host: str, port: int, services: int, seed: int, interval: int, **_):
        if services < 1 or interval < 1:
            raise CommandError("--services and --interval must be at least 1")
        # SIGTERM stops the demo like Ctrl-C: the poller finishes its poll, the simulator closes.
        # Set first, so a stop that comes while the demo is still starting is a clean one too.
        # SIGINT explicitly as well: a process started in the background by a shell inherits
        # it ignored, and then Ctrl-C (or a supervisor's SIGINT) would do nothing.
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        os.environ[TOKEN_ENV] = secrets.token_urlsafe(24)
        # The laptop's generated key (kept under var/) is fine for a demo; the web app refuses
        # to start without an explicit one otherwise.
        os.environ.setdefault("SECRET_KEY", settings.SECRET_KEY)
        # A fresh password each start: the demo's login is only as good as this one run.
        password = secrets.token_urlsafe(12)
        create_user(DEMO_USER, password, "admin")
        fleet = Fleet(size=services, seed=seed)
        simulator = SimulatorServer(
            fleet, project_id=DEMO_PROJECT_ID, auth="token", token=os.environ[TOKEN_ENV]
        ).start()
        stop = threading.Event()
        receiver = AlertReceiver(WEBHOOK_SECRET, self.stdout.write).start()
        poller = threading.Thread(
            target=poll_forever,
            args=(stop, lambda line: self.stdout.write(f"poller: {line}")),
            kwargs={"source_name": DEMO_SOURCE, "after_poll": after_poll},
            daemon=True,
        )
        sender = threading.Thread(target=send_forever, args=(stop,), daemon=True)
        try:
            self._point_source_at(simulator.url, interval)
            self._alert_to(receiver.url)
            poller.start()
            sender.start()
            self.stdout.write(
                f"Simulated ModelArts API with {services} services at {simulator.url}\n"
                f"Dashboard: http://{host}:{port}/   (Ctrl-C stops everything)\n"
                f"Log in as {DEMO_USER} with password {password}"
            )
            call_command("runserver", f"{host}:{port}", use_reloader=False)
        finally:
            stop.set()
            if poller.is_alive():
                poller.join(timeout=10)
            simulator.stop()
            receiver.stop()
            # Its simulator is gone: a later poller or web server must not keep polling it.
            Source.objects.filter(name=DEMO_SOURCE).update(enabled=False)

    def _alert_to(self, url: str) -> None:
        """The demo's alerts: failed services and a high failure rate, sent to the receiver
        that prints them (see /alerts/ for the same, and their deliveries)."""
        channel, _ = AlertChannel.objects.update_or_create(
            name=DEMO_CHANNEL,
            defaults={"kind": "webhook", "url": url, "secret": WEBHOOK_SECRET, "enabled": True},
        )
        rules = [
            {"name": "demo-failed", "condition": "statuses", "statuses": ["failed"]},
            {
                "name": "demo-failure-rate",
                "condition": "failure_rate",
                "failure_rate": 0.2,
                "window": "15m",
                "min_calls": 20,
            },
        ]
        for fields in rules:
            rule, _ = AlertRule.objects.update_or_create(name=fields.pop("name"), defaults=fields)
            rule.channels.add(channel)

    def _point_source_at(self, url: str, interval: int) -> None:
        Source.objects.update_or_create(
            name=DEMO_SOURCE,
            defaults={
                "endpoint": url,
                "project_id": DEMO_PROJECT_ID,
                "workspace_id": "",
                "auth_kind": Source.AuthKind.TOKEN,
                "token_env": TOKEN_ENV,
                "interval_seconds": interval,
                "enabled": True,
                "claimed_by": "",
                "claim_expires_at": None,
            },
        )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
