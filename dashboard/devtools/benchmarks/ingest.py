"""Poll ingest, end to end: the simulated API in its own process, over HTTP, into the database."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

MANAGE = Path(__file__).resolve().parents[3] / "manage.py"
PROJECT_ID = "0be0c4a1a2b3c4d5e6f708192a3b4c5d"
# Simulated seconds between the unchanged poll and the changed one: at the simulator's call
# rates about one service in ten changes in that time (its counters, mostly).
CHANGE_SECONDS = 0.025


def measure_polls(n: int):
    """Poll a fleet of n services four ways; the figures.

    The simulator's clock stands still between polls unless moved, so "unchanged" is exact.
    """
    from dashboard.models import Source

    simulator = Simulator(n, manual_clock=True)
    with simulator as url:
        source = Source.objects.create(
            name="bench",
            endpoint=url,
            project_id=PROJECT_ID,
            auth_kind="none",
            interval_seconds=3600,
        )
        rss_before = peak_rss_mb()
        first = timed_poll(source)
        unchanged = timed_poll(source)
        simulator.advance(CHANGE_SECONDS)
        changed = timed_poll(source)
        settled = timed_poll(source)
    return {
        "first_poll": {**first, "peak_rss_mb_before": rss_before},
        "unchanged_poll": unchanged,
        "changed_poll": changed,
        "settled_poll": settled,
        "alerts": timed_alerts(source),
        "peak_rss_mb": peak_rss_mb(),
    }


# Alert rules of every condition, evaluated as the poller does after a poll.
BENCH_RULES = [
    {"name": "failed", "condition": "statuses", "statuses": ["failed", "concerning"]},
    {"name": "rate", "condition": "failure_rate", "failure_rate": 0.5, "window": "15m"},
    {"name": "stuck", "condition": "detector", "detector": "stuck"},
    {"name": "idle", "condition": "detector", "detector": "idle"},
    {"name": "flapping", "condition": "detector", "detector": "flapping"},
    {"name": "stale", "condition": "stale"},
]
# Evaluating the rules may take at most this share of a poll (the alerts issue's floor).
ALERTS_SHARE_TARGET = 0.10


def timed_alerts(source) -> dict:
    """Seconds to evaluate every rule: the first time (everything fires, one message per rule
    is queued) and again with nothing changed (the steady state after each poll)."""
    from dashboard.alerts.engine import evaluate
    from dashboard.models import AlertChannel, AlertRule

    channel = AlertChannel.objects.create(name="bench", kind="webhook", url="http://127.0.0.1:9")
    for fields in BENCH_RULES:
        AlertRule.objects.create(**fields).channels.add(channel)
    figures = {}
    for label in ("first", "steady"):
        started = time.perf_counter()
        outcome = evaluate(source)
        figures[label] = {"seconds": time.perf_counter() - started, "fired": outcome.fired}
    return figures


def timed_poll(source) -> dict:
    from dashboard.ingest.poll import poll_source

    started, cpu = time.perf_counter(), cpu_seconds()
    run = poll_source(source)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    if not run.ok:
        raise RuntimeError(f"the benchmark's poll failed: {run.error_message}")
    return {
        "seconds": seconds,
        # The poller's own CPU time (SQLite's included, the simulator's not): when the machine
        # is busy with other work, it says more than the wall-clock figure.
        "cpu_seconds": cpu,
        "fetched": run.fetched_count,
        # Every service row the poll wrote: inserted, rewritten (deltas reset included), gone.
        "created": run.created_count,
        "updated": run.updated_count,
        "gone": run.gone_count,
        "peak_rss_mb": peak_rss_mb(),
    }


def render_polls(r: dict) -> list[str]:
    first, unchanged = r["first_poll"], r["unchanged_poll"]
    changed, settled = r["changed_poll"], r["settled_poll"]
    share = changed["updated"] / max(changed["fetched"], 1)
    return [
        f"  first poll: {_took(first)} ({first['fetched']:,} read, "
        f"{first['created']:,} rows written); peak RSS {first['peak_rss_mb_before']:.0f} → "
        f"{first['peak_rss_mb']:.0f} MB",
        f"  unchanged poll: {_took(unchanged)}, {_written(unchanged)} rows rewritten",
        f"  poll after {CHANGE_SECONDS * 1000:.0f} simulated ms: {_took(changed)}, "
        f"{_written(changed)} rows written ({share:.0%} of services changed)",
        f"  unchanged poll after that: {_took(settled)}, {_written(settled)} rows "
        "rewritten (calls since the previous poll back to 0)",
        *_alert_lines(r["alerts"], changed["seconds"]),
        f"  peak RSS after all polls: {r['peak_rss_mb']:.0f} MB",
    ]


def _alert_lines(alerts: dict, poll_seconds: float) -> list[str]:
    lines = []
    for label, figures in alerts.items():
        share = figures["seconds"] / poll_seconds
        mark = "ok" if share < ALERTS_SHARE_TARGET else "MISSED"
        lines.append(
            f"  alert rules ({len(BENCH_RULES)}), {label} evaluation: {figures['seconds']:.2f} s, "
            f"{figures['fired']:,} fired; {share:.1%} of the changed poll "
            f"(target < {ALERTS_SHARE_TARGET:.0%}) {mark}"
        )
    return lines


def _took(poll: dict) -> str:
    return f"{poll['seconds']:.2f} s ({poll['cpu_seconds']:.2f} s CPU)"


def _written(poll: dict) -> str:
    return f"{poll['created'] + poll['updated'] + poll['gone']:,}"


class Simulator:
    """simulate_modelarts in its own process, so its memory is not the poller's.

    With manual_clock its fleet's time stands still until advance() moves it.
    """

    def __init__(self, n: int, speed: float = 1.0, *, manual_clock: bool = False):
        self.args = [
            sys.executable, str(MANAGE), "simulate_modelarts", "--port", "0", "--services",
            str(n), "--seed", "7", "--auth", "none", "--project-id", PROJECT_ID,
            "--speed", str(speed), *(["--manual-clock"] if manual_clock else []),
        ]  # fmt: skip

    def __enter__(self) -> str:
        self.process = subprocess.Popen(
            self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = self.process.stdout.readline()
        return next(word for word in line.split() if word.startswith("http://"))

    def advance(self, seconds: float) -> None:
        self.process.stdin.write(f"{seconds}\n")
        self.process.stdin.flush()
        self.process.stdout.readline()  # "clock at …": the next request sees the new time

    def __exit__(self, *exc_info: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
