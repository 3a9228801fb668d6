"""Delete history older than the retention and thin old samples now (pollers do it hourly)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dashboard.ingest.retention import prune_history


class Command(BaseCommand):
    help = "Delete history older than the retention; thin older samples to hourly."

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
        # On demand, thinning covers the whole retention, not only the last two days.
        pruned = prune_history(days, thin_all=True)
        self.stdout.write(
            f"deleted {pruned.samples} samples, {pruned.changes} status changes and "
            f"{pruned.runs} poll runs older than {days} days; thinned {pruned.thinned} "
            "older samples to one per service per hour"
        )
