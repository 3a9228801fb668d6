"""Delete history older than the retention now (the poller also does it every hour)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dashboard.retention import prune_history


class Command(BaseCommand):
    help = "Delete samples, status changes and poll runs older than the retention."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=settings.DASHBOARD_HISTORY_DAYS,
            help="keep this many days (default DASHBOARD_HISTORY_DAYS)",
        )

    def handle(self, *args, days: int, **options) -> None:
        if days < 1:
            raise CommandError("--days must be at least 1")
        pruned = prune_history(days)
        self.stdout.write(
            f"deleted {pruned.samples} samples, {pruned.changes} status changes and "
            f"{pruned.runs} poll runs older than {days} days"
        )
