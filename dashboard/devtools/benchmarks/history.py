"""What history costs: storage per service per day, and the table's speed with a large history.

Storage is measured on real polls of a busy simulated fleet (the simulator runs fast, so counters
move between polls); the large history for the page timings is written directly, as a day of
samples every few minutes for every service, because polling a day at that size takes a day.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from dashboard.devtools.benchmarks.ingest import PROJECT_ID, Simulator
from dashboard.devtools.benchmarks.pages import time_url

HISTORY_TABLES = ("dashboard_servicesample", "dashboard_statuschange", "dashboard_pollrun")
# Views that read history (windows, detectors) beside one that reads none, and the most a
# windowed view may take as a multiple of the default one (issue 17's floor).
HISTORY_VIEWS = [
    ("/?", "default"),
    ("/?window=1h", "window 1h"),
    ("/?window=24h", "window 24h"),
    ("/?window=7d&sort=-wrate", "window 7d by rate"),
    ("/?window=15m&sort=-wcalls", "window 15m by calls"),
    ("/api/services?window=1h", "API window 1h"),
    ("/?detect=flapping", "flapping"),
]
WINDOWED_TARGET = 3.0
POLLS = 10
DAY = 86400


def measure_history(n: int, repeat: int, hours: int, step_minutes: int) -> dict:
    from django.test import Client

    from dashboard.ingest.poll import poll_source
    from dashboard.ingest.retention import prune_history
    from dashboard.ingest.windows import forget_windows
    from dashboard.models import Source
    from dashboard.web.accounts import create_user

    user = create_user("bench", "bench-password-long-enough", "admin")
    client = Client()
    client.force_login(user)
    # 600 simulated seconds per real second: every poll sees minutes of traffic.
    with Simulator(n, speed=600.0) as api:
        source = Source.objects.create(
            name="bench", endpoint=api, project_id=PROJECT_ID, auth_kind="none"
        )
        poll_source(source)  # the import writes one sample per service; not history growth
        before = history_size()
        for _ in range(POLLS):
            poll_source(source)
        after = history_size()
        small = {label: time_url(client, url, repeat) for url, label in HISTORY_VIEWS}
        written = write_history(source, hours, step_minutes)
        # The history went in behind the poller's back: its next poll works them all out anew.
        forget_windows(source)
        started = time.perf_counter()
        poll_source(source)
        written["windows_poll_seconds"] = time.perf_counter() - started
    large = {label: time_url(client, url, repeat) for url, label in HISTORY_VIEWS}
    started = time.perf_counter()
    pruned = prune_history()  # as a poller does every hour; the first time, it thins it all
    written["prune_seconds"] = time.perf_counter() - started
    written["thinned"] = pruned.thinned
    started = time.perf_counter()
    prune_history()
    written["next_prune_seconds"] = time.perf_counter() - started
    return {
        "services": n,
        "polls": POLLS,
        "bytes": after["bytes"] - before["bytes"],
        "samples": after["samples"] - before["samples"],
        "changes": after["changes"] - before["changes"],
        "history": written,
        "small": small,
        "large": large,
    }


def history_size() -> dict:
    """Bytes on disk of the history tables and their indexes, and their row counts."""
    from dashboard.models import ServiceSample, StatusChange

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT SUM(pgsize) FROM dbstat WHERE name IN "
                "(SELECT name FROM sqlite_master WHERE tbl_name IN (%s, %s, %s))",
                HISTORY_TABLES,
            )
        else:
            cursor.execute(
                "SELECT SUM(pg_total_relation_size(t::regclass)) FROM unnest(%s::text[]) t",
                [list(HISTORY_TABLES)],
            )
        size = cursor.fetchone()[0] or 0
    return {
        "bytes": size,
        "samples": ServiceSample.objects.count(),
        "changes": StatusChange.objects.count(),
    }


def write_history(source, hours: int, step_minutes: int) -> dict:
    """A sample every step for every service over the past hours, counters rising to today's.

    One service in twenty flaps between running and concerning, so the detectors have work.
    Written as the poller writes history: model instances would make this take minutes.
    """
    from dashboard.ingest.sql import insert_changes, insert_samples
    from dashboard.models import PollRun, Service

    now = timezone.now()
    steps = hours * 60 // step_minutes
    services = list(
        Service.objects.filter(source=source).values_list(
            "pk", "status", "invocation_times", "failed_times"
        )
    )
    rng = random.Random(7)
    samples = changes = 0
    with transaction.atomic():
        for step in range(steps, 0, -1):
            at = now - timedelta(minutes=step * step_minutes)
            run = PollRun.objects.create(source=source, started_at=at, finished_at=at, ok=True)
            share = 1 - step / (steps + 1)  # counters grow towards today's values
            flap = ("running", "concerning")[step % 2]
            earlier = at - timedelta(minutes=step_minutes)
            rows, flips = [], []
            for pk, status, calls, failures in services:
                flapping = pk % 20 == 0
                failed = int((failures or 0) * share * rng.uniform(0.5, 1.5))
                calls_then = int((calls or 0) * share)
                status_then = flap if flapping else status
                rows.append((pk, run.pk, at, status_then, None, calls_then, failed))
                if flapping:
                    other = ("concerning", "running")[step % 2]
                    flips.append((pk, source.pk, run.pk, at, earlier, other, flap, None))
            insert_samples(rows)
            insert_changes(flips)
            samples, changes = samples + len(rows), changes + len(flips)
    return {"hours": hours, "step_minutes": step_minutes, "samples": samples, "changes": changes}


def render_history(r: dict) -> list[str]:
    from django.conf import settings

    from dashboard.models import Source

    interval = Source._meta.get_field("interval_seconds").default  # a poll every 30 s

    per_poll = r["bytes"] / r["polls"]
    polls_per_day = DAY / interval
    row = r["bytes"] / max(1, r["samples"] + r["changes"])  # one history row, indexes included
    changed = r["samples"] / r["polls"] / r["services"]  # share of services sampled per poll
    first_day = row * changed * polls_per_day  # kept at full resolution
    later_day = row * 24  # thinned to one sample an hour
    days = settings.DASHBOARD_HISTORY_DAYS
    retained = first_day + later_day * (days - 1)
    h = r["history"]
    lines = [
        f"  history from {r['polls']} polls of a busy fleet: {r['samples']:,} samples and "
        f"{r['changes']:,} status changes ({changed:.0%} of services changed per poll), "
        f"{per_poll / 1024:,.0f} KiB per poll, {row:.0f} bytes per row with its indexes",
        f"  per service at one poll every {interval} s: {first_day / 1024:,.0f} KiB for the "
        f"last day (full resolution), {later_day / 1024:,.1f} KiB for each older day (hourly); "
        f"{retained / 2**20:,.2f} MiB for {days} days kept, "
        f"{retained * r['services'] / 2**30:,.2f} GiB for this fleet",
        f"  table with a large history ({r['history']['samples']:,} samples and "
        f"{r['history']['changes']:,} changes over {r['history']['hours']} h):",
        f"  pruning it as a poller does: {h['prune_seconds']:.1f} s the first time (thinned "
        f"{h['thinned']:,} samples older than the full-resolution period), "
        f"{h['next_prune_seconds']:.2f} s an hour later",
        f"  the poll after it, working out every service's windows afresh: "
        f"{h['windows_poll_seconds']:.1f} s",
        f"  {'view':<22}{'small history':>15}{'large history':>15}{'queries':>9}"
        f"{'x default':>11}{'target':>9}",
    ]
    default = r["large"]["default"]["median_ms"]
    for url, label in HISTORY_VIEWS:
        small, large = r["small"][label], r["large"][label]
        ratio = large["median_ms"] / default
        windowed = "window=" in url
        target = f"<= {WINDOWED_TARGET:.0f}x" if windowed else ""
        miss = "  MISS" if windowed and ratio > WINDOWED_TARGET else ""
        lines.append(
            f"  {label:<22}{small['median_ms']:>12.1f} ms{large['median_ms']:>12.1f} ms"
            f"{large['queries']:>9}{ratio:>10.1f}x{target:>9}{miss}"
        )
    return lines
