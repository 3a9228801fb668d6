"""Poll ingest, end to end: the simulated API in its own process, over HTTP, into the database."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"
PROJECT_ID = "0be0c4a1a2b3c4d5e6f708192a3b4c5d"


def measure_polls(n: int):
    """Poll a fleet of n services three ways; the figures, and the source it polled into."""
    from dashboard.models import Source
    from dashboard.polling import poll_source

    with Simulator(n, speed=1e-6) as url:
        source = Source.objects.create(
            name="bench",
            endpoint=url,
            project_id=PROJECT_ID,
            auth_kind="none",
            interval_seconds=3600,
        )
        rss_before = peak_rss_mb()
        first = timed(lambda: poll_source(source))
        rss_after = peak_rss_mb()
        second = timed(lambda: poll_source(source))
    with Simulator(n, speed=50.0) as url:
        Source.objects.filter(pk=source.pk).update(endpoint=url)
        source.refresh_from_db()
        time.sleep(2)  # 100 simulated seconds: deployments move, counters grow
        changed = timed(lambda: poll_source(source))
    return {
        "first_poll": {"seconds": first[0], "ok": first[1].ok, "fetched": first[1].fetched_count},
        "peak_rss_mb": {"before": rss_before, "after": rss_after},
        "unchanged_poll": {"seconds": second[0], "updated": second[1].updated_count},
        "changed_poll": {"seconds": changed[0], "updated": changed[1].updated_count},
    }


def render_polls(r: dict) -> list[str]:
    return [
        f"  first poll: {r['first_poll']['seconds']:.2f} s ({r['first_poll']['fetched']:,} read); "
        f"peak RSS {r['peak_rss_mb']['before']:.0f} → {r['peak_rss_mb']['after']:.0f} MB",
        f"  unchanged poll: {r['unchanged_poll']['seconds']:.2f} s, "
        f"{r['unchanged_poll']['updated']:,} rows rewritten",
        f"  poll after 100 simulated s: {r['changed_poll']['seconds']:.2f} s, "
        f"{r['changed_poll']['updated']:,} rows changed",
    ]


class Simulator:
    """simulate_modelarts in its own process, so its memory is not the poller's."""

    def __init__(self, n: int, speed: float):
        self.args = [
            sys.executable, str(MANAGE), "simulate_modelarts", "--port", "0", "--services",
            str(n), "--seed", "7", "--auth", "none", "--project-id", PROJECT_ID,
            "--speed", str(speed),
        ]  # fmt: skip

    def __enter__(self) -> str:
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        return next(word for word in line.split() if word.startswith("http://"))

    def __exit__(self, *exc_info: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
