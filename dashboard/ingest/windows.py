"""Every service's numbers over the table's windows, kept by the poller as it writes each
snapshot, so that a windowed view (and a failure-rate alert rule) reads stored rows.

A window ends at its source's latest successful poll. Its numbers move only when the service's
counters move (a poll rewrote the row) or when the window's start passes one of its samples
(the start is now - length, and samples are written only on change). So a poll works out again
only the services it rewrote and those with a sample between the previous start and this one:
at a tenth of the fleet changing per poll, about a fifth of the rows. Each is worked out in one
SQL statement per window, by the definition in dashboard.baselines.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from django.conf import settings
from django.db import connection

from dashboard.baselines import WINDOWS
from dashboard.models import PollRun, ServiceSample, Source

# Services per statement: the id lists stay well under any database's parameter limit.
CHUNK = 2000

# Every service's numbers over one window, straight into the table. The definition is
# baselines.window_columns (tests compare the two on random histories); as Django's ORM would
# write it, each step's expression is repeated in the next (the baseline subqueries a dozen times
# per row), so here each step is a CTE: the baseline sample found once per service, then read.
_UPSERT = """
WITH base AS MATERIALIZED (
    SELECT s.id, s.invocation_times, s.failed_times, s.severity, s.service_name,
        COALESCE(
            (SELECT x.id FROM dashboard_servicesample x WHERE x.service_id = s.id
                AND x.at <= %(start)s ORDER BY x.at DESC, x.id DESC LIMIT 1),
            CASE WHEN s.first_seen_at > %(start)s THEN
                (SELECT x.id FROM dashboard_servicesample x WHERE x.service_id = s.id
                    AND x.at > %(start)s ORDER BY x.at, x.id LIMIT 1)
            END
        ) AS sample_id
    FROM {services}
    WHERE s.gone_at IS NULL AND {source}
), counted AS (
    SELECT base.id, base.severity, base.service_name,
        x.invocation_times AS base_calls, x.failed_times AS base_failures,
        CASE WHEN base.invocation_times >= x.invocation_times
            THEN base.invocation_times - x.invocation_times END AS calls,
        CASE WHEN base.failed_times >= x.failed_times
            THEN base.failed_times - x.failed_times END AS failures
    FROM base LEFT JOIN dashboard_servicesample x ON x.id = base.sample_id
), rated AS (
    SELECT counted.*, CASE WHEN calls > 0
        THEN CAST(failures AS {real}) / CAST(calls AS {real}) END AS rate
    FROM counted
)
INSERT INTO dashboard_servicewindow (service_id, "window", base_calls, base_failures, calls,
    failures, rate, rank_rate, severity, service_name)
SELECT id, %(window)s, base_calls, base_failures, calls, failures, rate,
    CASE WHEN calls >= %(min_calls)s THEN rate END, severity, service_name
FROM rated WHERE true
ON CONFLICT (service_id, "window") DO UPDATE SET base_calls = excluded.base_calls,
    base_failures = excluded.base_failures, calls = excluded.calls,
    failures = excluded.failures, rate = excluded.rate, rank_rate = excluded.rank_rate,
    severity = excluded.severity, service_name = excluded.service_name
WHERE {changed}
"""
# A row is rewritten only when a number changed: every rewrite updates the table's indexes.
_KEPT = ("base_calls", "base_failures", "calls", "failures", "rate", "rank_rate", "severity",
         "service_name")  # fmt: skip


def keep_windows(source: Source, now: datetime, rewritten: Collection[int]) -> None:
    """Bring the source's windows to end at `now` (its poll's time), inside the poll's
    transaction; `rewritten` are the services this poll inserted or rewrote."""
    previous = source.windows_as_of
    if source.windows_min_calls != settings.DASHBOARD_RATE_MIN_CALLS:
        previous = None
    for name, length in WINDOWS.items():
        start = now - length
        if previous is None or previous >= now:
            _write(source, name, start)
            continue
        # Samples are written at their poll's start time, and poll runs are indexed by it.
        passed = PollRun.objects.filter(
            source=source, started_at__gt=previous - length, started_at__lte=start
        )
        moved = ServiceSample.objects.filter(poll_run__in=passed).values_list("service_id")
        pks = sorted(set(rewritten).union(pk for (pk,) in moved.iterator(chunk_size=CHUNK)))
        for first in range(0, len(pks), CHUNK):
            _write(source, name, start, pks[first : first + CHUNK])
    fields = {"windows_as_of": now, "windows_min_calls": settings.DASHBOARD_RATE_MIN_CALLS}
    Source.objects.filter(pk=source.pk).update(**fields)
    source.windows_as_of, source.windows_min_calls = fields.values()


def forget_windows(source: Source) -> None:
    """Have the source's next poll work out all its windows afresh: pruned history may have
    taken a sample that was some window's baseline."""
    Source.objects.filter(pk=source.pk).update(windows_as_of=None)
    source.windows_as_of = None


def rework_windows(pks: list[int]) -> None:
    """Work out again these services' windows, as of their sources' (after pruning)."""
    if not pks:
        return
    for source in Source.objects.exclude(windows_as_of=None):
        for first in range(0, len(pks), CHUNK):
            for name, length in WINDOWS.items():
                _write(source, name, source.windows_as_of - length, pks[first : first + CHUNK])


def _write(source: Source, name: str, start: datetime, pks: list[int] | None = None) -> None:
    """Work out the source's live services' numbers over the window starting at `start`
    (only those of `pks` when given), replacing what the table held."""
    services, source_of = "dashboard_service s", "s.source_id = %(source)s"
    params = {
        "start": connection.ops.adapt_datetimefield_value(start),
        "source": source.pk,
        "window": name,
        "min_calls": settings.DASHBOARD_RATE_MIN_CALLS,
    }
    if pks is not None and connection.vendor == "postgresql":
        # Each id looks up its row (LIMIT 1 keeps the planner from turning the lookups into a
        # join): planned from statistics a minute old, after a first poll, a plain IN list
        # read the whole table for each chunk, 170 ms instead of 36.
        services = (
            "unnest(%(pks)s::bigint[]) AS picked(id) CROSS JOIN LATERAL "
            "(SELECT * FROM dashboard_service WHERE id = picked.id LIMIT 1) s"
        )
        params["pks"] = pks
    elif pks is not None:
        # The ids pick the rows. "+" keeps SQLite from reading the (source, service_id) index
        # for the source instead: it guesses that picks a few rows, and reads all of them.
        listed = ", ".join(f"%(pk{i})s" for i in range(len(pks)))
        source_of = f"+s.source_id = %(source)s AND s.id IN ({listed})"
        params.update((f"pk{i}", pk) for i, pk in enumerate(pks))
    sqlite = connection.vendor == "sqlite"
    real, distinct = ("REAL", "IS NOT") if sqlite else ("double precision", "IS DISTINCT FROM")
    table = "dashboard_servicewindow"
    changed = " OR ".join(f"{table}.{column} {distinct} excluded.{column}" for column in _KEPT)
    statement = _UPSERT.format(services=services, source=source_of, real=real, changed=changed)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
