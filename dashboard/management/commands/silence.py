"""Maintenance windows from the command line: silence, list, expire."""

from __future__ import annotations

import getpass
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from dashboard.models import Silence


class Command(BaseCommand):
    help = (
        "Silence alerts for a while (by service id, source, owner or rule; every one given "
        "must match), list the silences, or expire one early."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--service", default="", help="a service id")
        parser.add_argument("--source", default="", help="a source's name")
        parser.add_argument("--owner", default="", help="an owner (user id)")
        parser.add_argument("--rule", default="", help="a rule's name")
        parser.add_argument("--minutes", type=int, default=60, help="how long (default 60)")
        parser.add_argument("--comment", default="", help="why: shown beside silenced alerts")
        parser.add_argument("--author", default="", help="who (default: this user)")
        parser.add_argument("--list", action="store_true", help="list the active silences")
        parser.add_argument("--expire", type=int, metavar="ID", help="end a silence now")

    def handle(self, *args, **options) -> None:
        if options["list"]:
            self._list()
        elif options["expire"] is not None:
            self._expire(options["expire"])
        else:
            self._create(options)

    def _create(self, options: dict) -> None:
        matchers = {key: options[key].strip() for key in ("service", "source", "owner", "rule")}
        if not any(matchers.values()):
            raise CommandError("name what to silence: --service, --source, --owner or --rule")
        if not options["comment"].strip():
            raise CommandError("--comment is required: say why, for whoever sees the silence")
        if not 1 <= options["minutes"] <= 60 * 24 * 90:
            raise CommandError("--minutes must be from 1 to 129600 (90 days)")
        now = timezone.now()
        silence = Silence.objects.create(
            service_id=matchers["service"],
            source=matchers["source"],
            owner=matchers["owner"],
            rule=matchers["rule"],
            starts_at=now,
            ends_at=now + timedelta(minutes=options["minutes"]),
            comment=options["comment"].strip(),
            author=options["author"].strip() or getpass.getuser(),
        )
        self.stdout.write(f"silence {silence.pk} until {silence.ends_at:%Y-%m-%d %H:%M} UTC")

    def _list(self) -> None:
        active = Silence.objects.filter(ends_at__gt=timezone.now()).order_by("ends_at")
        for silence in active:
            what = ", ".join(
                f"{name}={value}"
                for name, value in (
                    ("service", silence.service_id),
                    ("source", silence.source),
                    ("owner", silence.owner),
                    ("rule", silence.rule),
                )
                if value
            )
            self.stdout.write(
                f"{silence.pk}\t{what}\tuntil {silence.ends_at:%Y-%m-%d %H:%M} UTC\t"
                f"{silence.author}: {silence.comment}"
            )
        if not active:
            self.stdout.write("no active silence")

    def _expire(self, pk: int) -> None:
        now = timezone.now()
        if not Silence.objects.filter(pk=pk, ends_at__gt=now).update(ends_at=now):
            raise CommandError(f"no active silence {pk}")
        self.stdout.write(f"silence {pk} expired")
