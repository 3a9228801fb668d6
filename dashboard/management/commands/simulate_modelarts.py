"""Serve a simulated ModelArts service-list API until SIGINT or SIGTERM."""

from __future__ import annotations

import os
import signal
import threading
from argparse import ArgumentParser
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from dashboard.simulator import Fleet, SimulatorServer


class Command(BaseCommand):
    help = "Serve a fake ModelArts service-list API over a simulated, evolving fleet."
    # The simulator needs neither the database nor URL configuration; skipping the checks keeps
    # it usable while those are being migrated or edited.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
        parser.add_argument("--services", type=int, default=200)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--auth", choices=("none", "token"), default="none")
        parser.add_argument(
            "--token", help="the X-Auth-Token to require (default: $MODELARTS_TOKEN)"
        )
        parser.add_argument("--project-id", help="default: the fleet's own project id")
        parser.add_argument("--offset-mode", choices=("page", "record"), default="page")
        parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")

    def handle(self, *args: Any, **options: Any) -> None:
        token = options["token"] or os.environ.get("MODELARTS_TOKEN", "")
        if options["auth"] == "token" and not token:
            raise CommandError("--auth token needs --token or the MODELARTS_TOKEN variable")
        if options["services"] < 0 or not options["speed"] > 0:
            raise CommandError("--services must be at least 0 and --speed above 0")
        fleet = Fleet(size=options["services"], seed=options["seed"], speed=options["speed"])
        server = SimulatorServer(
            fleet,
            host=options["host"],
            port=options["port"],
            project_id=options["project_id"],
            auth=options["auth"],
            token=token or None,
            offset_mode=options["offset_mode"],
        )
        stop = threading.Event()
        self._on_signals(stop)
        try:
            server.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}") from exc
        # The token itself is never printed: it may be a real secret from the environment.
        auth = "token (set)" if options["auth"] == "token" else "none"
        self.stdout.write(
            f"ModelArts simulator: {fleet.size} services at {server.url} "
            f"project {server.project_id} auth {auth} offset {server.offset_mode}"
        )
        self.stdout.flush()
        try:
            # Short waits keep the main thread responsive to signals.
            while not stop.wait(0.5):
                pass
        finally:
            server.stop()

    @staticmethod
    def _on_signals(stop: threading.Event) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
