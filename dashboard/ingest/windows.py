"""Every service's numbers over the table's windows, kept by the poller as it writes each
snapshot, so that a windowed view (and a failure-rate alert rule) reads stored rows.

A window ends at its source's latest successful poll. Its numbers move only when the service's
counters move (a poll rewrote the row) or when the window's start passes one of its samples
(the start is now - length, and samples are written only on change). So a poll works out again
only the services it rewrote and those with a sample between the previous start and this one:
at a tenth of the fleet changing per poll, about a fifth of the rows. Each is worked out in one
SQL statement per window, by the definition in dashboard.baselines.

Most of those are services whose counters moved while their baseline (the sample at the window's
start) stayed the one their row holds: their numbers are their new counters less it, with no
sample read. Only the services whose baseline may have moved (the start passed one of their
samples; new, or back from gone) have it looked up again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
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
# per row), so here each step is a CTE: {counted} gives each service's counters at the window's
# start (base_) and their increase since, from which the rate follows.
_UPSERT = """
WITH {counted}, rated AS (
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
# The baseline is the sample found once per service, then read.
_FROM_SAMPLES = """base AS MATERIALIZED (
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
)"""
# The baseline the window's row holds: still the one, for a service whose windows were current
# as of the previous poll and no sample of which the window's start has passed since.
_FROM_STORED = """counted AS (
    SELECT s.id, s.severity, s.service_name, w.base_calls, w.base_failures,
        CASE WHEN s.invocation_times >= w.base_calls
            THEN s.invocation_times - w.base_calls END AS calls,
        CASE WHEN s.failed_times >= w.base_failures
            THEN s.failed_times - w.base_failures END AS failures
    FROM {windows}
    WHERE {picked}
)"""
# A row is rewritten only when a number changed: every rewrite updates the table's indexes.
_KEPT = ("base_calls", "base_failures", "calls", "failures", "rate", "rank_rate", "severity",
         "service_name")  # fmt: skip


def keep_windows(
    source: Source, now: datetime, rewritten: Collection[int], *, fresh: Collection[int]
) -> None:
    """Bring the source's windows to end at `now` (its poll's time), inside the poll's
    transaction; `rewritten` are the services this poll inserted or rewrote, `fresh` those of
    them whose windows were not current as of its previous poll (new, or back from gone)."""
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
        again = set(fresh).union(pk for (pk,) in moved.iterator(chunk_size=CHUNK))
        for pks in _chunks(again):
            _write(source, name, start, pks)
        # The others' baselines stayed put: their numbers follow from their new counters.
        for pks in _chunks(set(rewritten) - again):
            _advance(name, pks)
    fields = {"windows_as_of": now, "windows_min_calls": settings.DASHBOARD_RATE_MIN_CALLS}
    Source.objects.filter(pk=source.pk).update(**fields)
    source.windows_as_of, source.windows_min_calls = fields.values()


def _chunks(pks: Collection[int]) -> Iterator[list[int]]:
    ordered = sorted(pks)
    for first in range(0, len(ordered), CHUNK):
        yield ordered[first : first + CHUNK]


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
        for chunk in _chunks(pks):
            for name, length in WINDOWS.items():
                _write(source, name, source.windows_as_of - length, chunk)


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
        source_of = f"+s.source_id = %(source)s AND s.id IN ({_listed(pks, params)})"
    counted = _FROM_SAMPLES.format(services=services, source=source_of)
    _upsert(counted, params)


def _advance(name: str, pks: list[int]) -> None:
    """Work out these services' numbers over the window from the baselines their rows hold."""
    params = {"window": name, "min_calls": settings.DASHBOARD_RATE_MIN_CALLS}
    if connection.vendor == "postgresql":
        # Lookups by id, whatever the statistics say (see _write).
        windows = (
            "unnest(%(pks)s::bigint[]) AS picked(id) CROSS JOIN LATERAL "
            "(SELECT * FROM dashboard_servicewindow WHERE service_id = picked.id"
            ' AND "window" = %(window)s LIMIT 1) w CROSS JOIN LATERAL '
            "(SELECT * FROM dashboard_service WHERE id = picked.id LIMIT 1) s"
        )
        picked = "true"
        params["pks"] = pks
    else:
        windows = "dashboard_servicewindow w JOIN dashboard_service s ON s.id = w.service_id"
        picked = f'w."window" = %(window)s AND w.service_id IN ({_listed(pks, params)})'
    _upsert(_FROM_STORED.format(windows=windows, picked=picked), params)


def _listed(pks: list[int], params: dict[str, object]) -> str:
    """SQLite: the ids as named parameters (added to `params`), for an IN list."""
    params.update((f"pk{i}", pk) for i, pk in enumerate(pks))
    return ", ".join(f"%(pk{i})s" for i in range(len(pks)))


def _upsert(counted: str, params: dict[str, object]) -> None:
    sqlite = connection.vendor == "sqlite"
    real, distinct = ("REAL", "IS NOT") if sqlite else ("double precision", "IS DISTINCT FROM")
    table = "dashboard_servicewindow"
    changed = " OR ".join(f"{table}.{column} {distinct} excluded.{column}" for column in _KEPT)
    statement = _UPSERT.format(counted=counted, real=real, changed=changed)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
