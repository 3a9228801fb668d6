"""Apply an alerts provisioning file (TOML): `manage.py apply_alerts alerts.toml`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from dashboard.alerts.provisioning import ProvisioningError, apply


class Command(BaseCommand):
    help = (
        "Create or update alert channels and rules from a TOML file; channels and rules an "
        "earlier file made and this one leaves out are removed. A bad file changes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="the TOML file ([[channel]] and [[rule]] tables)")

    def handle(self, *args, file: str, **options) -> None:
        try:
            applied = apply(file)
        except ProvisioningError as exc:
            raise CommandError(f"{file}: nothing applied: {exc}") from exc
        self.stdout.write(
            f"alerts: {applied.channels} channel(s) and {applied.rules} rule(s) applied, "
            f"{applied.removed} removed"
        )
