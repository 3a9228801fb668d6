"""/metrics and the full exports at a fleet size: how long a scrape takes beside the table's
default view, and the peak Python memory of one scrape or export, which must not grow with the
fleet (each streams a fixed chunk at a time)."""

from __future__ import annotations

import statistics
import time
import tracemalloc

from django.core.management.base import CommandError
from django.test import Client

# /metrics may take this many times the table's default view (median against median).
METRICS_TARGET = 10
# Peak Python memory of one response, whatever the fleet's size: a few stored parts for
# /metrics, a chunk of rows for an export.
PEAK_TARGET_MB = {"/metrics": 16, "/services.csv": 48, "/services.json": 48}
# An export of 100,000 services takes seconds: timed fewer times than the scrape.
EXPORT_REPEAT = 3


def measure_scrape(repeat: int) -> dict:
    """Median ms and peak traced MB of /metrics and of each full export (all rows)."""
    client = _signed_in()
    results = {}
    for url, times in (
        ("/metrics", repeat),
        ("/services.csv", min(repeat, EXPORT_REPEAT)),
        ("/services.json", min(repeat, EXPORT_REPEAT)),
    ):
        size = _read(client, url)  # warm the caches the way the next scrape finds them
        results[url] = {
            "median_ms": statistics.median(_timed(client, url) for _ in range(max(times, 1))),
            "peak_mb": _peak_mb(client, url),
            "body_mb": size / 1e6,
        }
    return results


def _signed_in() -> Client:
    """A viewer: the exports need a login (/metrics is public unless configured otherwise)."""
    from dashboard.web.accounts import create_user

    user = create_user("bench-scrape", "bench-scrape-password-long-enough", "viewer")
    client = Client()
    client.force_login(user)
    return client


def _read(client: Client, url: str) -> int:
    """Request the URL and read its streamed body, keeping none of it; its size in bytes."""
    response = client.get(url)
    if response.status_code != 200 or not response.streaming:
        raise CommandError(
            f"{url} answered {response.status_code} (streamed: {response.streaming})"
        )
    size = 0
    for chunk in response.streaming_content:
        size += len(chunk)
    response.close()
    return size


def _timed(client: Client, url: str) -> float:
    started = time.perf_counter()
    _read(client, url)
    return (time.perf_counter() - started) * 1000


def _peak_mb(client: Client, url: str) -> float:
    """The most Python memory one request held at once beyond what was held before it
    (tracemalloc: the database's own C memory is not counted; it slows Python, so timed apart)."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        _read(client, url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak - before) / 1e6


def render_scrape(r: dict, default_view_ms: float) -> list[str]:
    metrics = r["/metrics"]
    ratio = metrics["median_ms"] / default_view_ms
    lines = [
        f"  /metrics median {metrics['median_ms']:,.0f} ms = {ratio:.1f}x the default view "
        f"({default_view_ms:,.1f} ms; target <= {METRICS_TARGET}x) {_mark(ratio <= METRICS_TARGET)}"
    ]
    for url, figures in r.items():
        target = PEAK_TARGET_MB[url]
        timing = "" if url == "/metrics" else f"median {figures['median_ms']:,.0f} ms, "
        lines.append(
            f"  {url} {timing}peak Python memory {figures['peak_mb']:.1f} MB for "
            f"{figures['body_mb']:,.1f} MB sent (target <= {target} MB at any fleet size) "
            f"{_mark(figures['peak_mb'] <= target)}"
        )
    return lines


def _mark(met: bool) -> str:
    return "OK" if met else "MISS"
