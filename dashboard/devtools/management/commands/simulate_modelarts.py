"""Serve a simulated ModelArts service-list API until SIGINT or SIGTERM."""

from __future__ import annotations

import gc
import math
import os
import signal
import sys
import threading
import time
from argparse import ArgumentParser
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from dashboard.devtools.simulator import Fault, Fleet, ManualClock, SimulatorServer

FAULT_HELP = (
    "SPEC[@PROBABILITY]: make requests fail at random (seeded by --seed), e.g. 503@0.1, "
    "429:retry-after=2,gateway@0.05, latency:0.5@0.2, timeout:10@0.01, malformed-json, "
    "truncated, html-502 (any request); wrong-types, total-count-drift:3, duplicate-ids "
    "(list requests only); repeatable"
)


def parse_fault(value: str) -> tuple[Fault, float]:
    """`SPEC[@PROBABILITY]` → (fault, probability), probability 1 when not given."""
    spec, _, probability = value.rpartition("@") if "@" in value else (value, "", "1")
    try:
        chance = float(probability)
        fault = Fault.parse(spec)
    except ValueError as exc:
        raise CommandError(f"--fault {value}: {exc}") from exc
    if not 0 <= chance <= 1:
        raise CommandError(f"--fault {value}: the probability must be between 0 and 1")
    return fault, chance


def parse_iam_user(value: str) -> tuple[tuple[str, str], str]:
    domain, user, password = (value.split(":", 2) + ["", ""])[:3]
    if not (domain and user and password):
        # The value holds a password: never repeat it.
        raise CommandError("--iam-user must look like DOMAIN:USER:PASSWORD")
    return (domain, user), password


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
        parser.add_argument("--auth", choices=("none", "token", "aksk", "iam"), default="none")
        parser.add_argument(
            "--token", help="the X-Auth-Token to require (default: $MODELARTS_TOKEN)"
        )
        # Secrets on a command line show in `ps`; the environment variables are the better way.
        parser.add_argument("--ak", help="the access key for --auth aksk (default: $MODELARTS_AK)")
        parser.add_argument("--sk", help="its secret key (default: $MODELARTS_SK)")
        parser.add_argument(
            "--security-token",
            help="require this X-Security-Token, as temporary AK/SK do "
            "(default: $MODELARTS_SECURITY_TOKEN)",
        )
        parser.add_argument(
            "--iam-user",
            action="append",
            default=[],
            metavar="DOMAIN:USER:PASSWORD",
            help="a user --auth iam lets log in; repeatable (default: $HUAWEICLOUD_DOMAIN, "
            "$HUAWEICLOUD_USERNAME, $HUAWEICLOUD_PASSWORD)",
        )
        parser.add_argument(
            "--project-name", default="cn-north-4", help="the project IAM tokens are scoped to"
        )
        parser.add_argument("--token-ttl", type=float, default=86400.0, help="IAM token seconds")
        parser.add_argument("--project-id", help="default: the fleet's own project id")
        parser.add_argument("--offset-mode", choices=("page", "record"), default="page")
        parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
        parser.add_argument(
            "--manual-clock",
            action="store_true",
            help="hold the fleet's time still; each line read from stdin, a number of seconds, "
            "moves it on and is answered on stdout (for benchmarks and reproducible runs)",
        )
        parser.add_argument(
            "--fault", action="append", default=[], metavar="SPEC[@PROBABILITY]", help=FAULT_HELP
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["services"] < 0 or not options["speed"] > 0:
            raise CommandError("--services must be at least 0 and --speed above 0")
        if not options["token_ttl"] > 0:
            raise CommandError("--token-ttl must be above 0")
        faults = [parse_fault(value) for value in options["fault"]]
        credentials = self._credentials(options)
        clock = ManualClock(time.time()) if options["manual_clock"] else time.time
        fleet = Fleet(
            size=options["services"], seed=options["seed"], clock=clock, speed=options["speed"]
        )
        # The fleet lives as long as the process: out of the collector's sight, the millions of
        # objects of a big fleet are not scanned again and again while pages are served.
        gc.freeze()
        server = SimulatorServer(
            fleet,
            host=options["host"],
            port=options["port"],
            project_id=options["project_id"],
            auth=options["auth"],
            offset_mode=options["offset_mode"],
            project_name=options["project_name"],
            token_ttl=options["token_ttl"],
            random_faults=faults,
            **credentials,
        )
        stop = threading.Event()
        self._on_signals(stop)
        try:
            server.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}") from exc
        self.stdout.write(
            f"ModelArts simulator: {fleet.size} services at {server.url} "
            f"project {server.project_id} auth {self._describe_auth(options, credentials)} "
            f"offset {server.offset_mode} faults "
            + (", ".join(f"{fault}@{chance:g}" for fault, chance in faults) or "none")
        )
        self.stdout.flush()
        if isinstance(clock, ManualClock):
            threading.Thread(target=self._follow_stdin, args=(clock,), daemon=True).start()
        try:
            # Short waits keep the main thread responsive to signals.
            while not stop.wait(0.5):
                pass
        finally:
            server.stop()

    def _follow_stdin(self, clock: ManualClock) -> None:
        for line in sys.stdin:
            try:
                seconds = float(line)
                if not math.isfinite(seconds):
                    raise ValueError(line)
                clock.advance(seconds)
            except ValueError:
                self.stderr.write(f"not a number of seconds to move the clock on: {line.strip()!r}")
                continue
            self.stdout.write(f"clock at {clock.now():.3f}")
            self.stdout.flush()

    @staticmethod
    def _credentials(options: dict[str, Any]) -> dict[str, Any]:
        """The secrets the chosen auth mode needs, from the options or the environment."""
        env = os.environ.get
        auth = options["auth"]
        if auth == "token":
            token = options["token"] or env("MODELARTS_TOKEN", "")
            if not token:
                raise CommandError("--auth token needs --token or the MODELARTS_TOKEN variable")
            return {"token": token}
        if auth == "aksk":
            ak, sk = options["ak"] or env("MODELARTS_AK"), options["sk"] or env("MODELARTS_SK")
            if not (ak and sk):
                raise CommandError("--auth aksk needs --ak and --sk, or MODELARTS_AK/MODELARTS_SK")
            security_token = options["security_token"] or env("MODELARTS_SECURITY_TOKEN")
            return {"ak": ak, "sk": sk, "security_token": security_token or None}
        if auth == "iam":
            users = dict(parse_iam_user(value) for value in options["iam_user"])
            names = [env(f"HUAWEICLOUD_{name}") for name in ("DOMAIN", "USERNAME", "PASSWORD")]
            if not users and all(names):
                users[(names[0], names[1])] = names[2]
            if not users:
                raise CommandError(
                    "--auth iam needs --iam-user DOMAIN:USER:PASSWORD or HUAWEICLOUD_DOMAIN, "
                    "HUAWEICLOUD_USERNAME and HUAWEICLOUD_PASSWORD"
                )
            return {"iam_users": users}
        return {}

    @staticmethod
    def _describe_auth(options: dict[str, Any], credentials: dict[str, Any]) -> str:
        # Secrets come from the environment and may be real: say which are set, never what.
        auth = options["auth"]
        if auth == "token":
            return "token (set)"
        if auth == "aksk":
            temporary = ", security token set" if credentials["security_token"] else ""
            return f"aksk (AK/SK set{temporary})"
        if auth == "iam":
            users = len(credentials["iam_users"])
            return (
                f"iam ({users} user{'s' if users != 1 else ''}, POST /v3/auth/tokens, "
                f"project {options['project_name']}, tokens last {options['token_ttl']:g} s)"
            )
        return "none"

    @staticmethod
    def _on_signals(stop: threading.Event) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
