"""The service table's query: a validated filter → filtered, sorted rows and their counts.

Every view of the table is a URL (see web.params); this is what such a view selects."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import NullIf
from django.utils import timezone

from dashboard.models import Alert, OwnerName, Service, ServiceDetail, Source
from dashboard.queries.detectors import DETECTOR_FIELDS, detected, detector_columns
from dashboard.queries.search import search
from dashboard.queries.sources import disabled_ids, visible
from dashboard.queries.windows import (
    SINCE_FIELDS,
    WINDOW_FIELDS,
    since_columns,
    with_window,
)
from dashboard.statuses import severity

# Sort keys in the URL → columns, each with id as the tie-breaker so pages never overlap.
SORTS: dict[str, tuple[str, ...]] = {
    "name": ("service_name", "id"),
    "status": ("severity", "service_name", "id"),
    "type": ("infer_type", "id"),
    "owner": ("owner", "id"),
    "calls": ("invocation_times", "id"),
    "failures": ("failed_times", "id"),
    "rate": ("failure_rate", "id"),
    "delta": ("calls_delta", "id"),
    "published": ("publish_at", "id"),
    # Over the window (?window=…); a leading "-" on a column reverses it against the sort.
    # (Their columns are the stored window's, so that each sort reads one of its indexes.)
    "wcalls": ("w_calls", "w_service_id"),
    "wfailures": ("w_failures", "w_service_id"),
    "wrate": ("w_rate", "w_service_id"),
    "failing": ("-w_rank_rate", "w_severity", "w_service_name", "w_service_id"),
    # From each service's stored detail (see ingest.details): no index, a sort of the rows.
    "instances": ("instances_missing", "severity", "id"),
    "reason": ("reason", "id"),
}

# Columns that may be NULL: they sort NULLS LAST, the others plainly, so that each ORDER BY
# reads its index as stored (an index scan cannot skip NULLs it does not hold).
NULLABLE = frozenset(
    {f.column for f in Service._meta.concrete_fields if f.null}
    | {"w_calls", "w_failures", "w_rate", "w_rank_rate", "instances_missing", "reason"}
)

# Sort columns that may be NULL and have one index, ascending, on either database. PostgreSQL
# reads it backwards as DESC NULLS FIRST, and the table puts NULLs last: a descending sort there
# reads the rows with a value, then the rows without, as two queries. (A DESC NULLS LAST twin of
# each index, as migrations 0002 and 0009 made, cost every poll a write into it per row it
# rewrote; migration 0015 drops them.) SQLite reads NULLS LAST from the one index itself.
ONE_INDEX_NULLABLE = frozenset(
    {"invocation_times", "failed_times", "failure_rate", "calls_delta", "publish_at"}
    | {"w_calls", "w_failures", "w_rate"}
)


def nulls_first_descending() -> bool:
    """Whether the database's descending index scan puts NULLs first."""
    return connection.vendor == "postgresql"


# The stored detail's sort keys (a LEFT JOIN, made only when a view sorts by them).
DETAIL_SORTS = ("instances", "reason")
DETAIL_COLUMNS = {
    "instances_missing": F("detail__desired_instances") - F("detail__running_instances"),
    "reason": NullIf(F("detail__error_msg"), Value("")),
}
WINDOW_SORTS = ("wcalls", "wfailures", "wrate", "failing")

DEFAULT_SORT = "status"

# With a window, the table opens on what is failing now.
DEFAULT_WINDOW_SORT = "failing"

PAGE_SIZES = (25, 50, 100, 200)

DEFAULT_PAGE_SIZE = 50


def default_sort(window: str) -> str:
    return DEFAULT_WINDOW_SORT if window else DEFAULT_SORT


@dataclass(frozen=True)
class ServiceFilter:
    statuses: tuple[str, ...] = ()
    infer_type: str = ""
    owner: str = ""
    source: str = ""
    q: str = ""
    sort: str = DEFAULT_SORT
    page: int = 1
    per_page: int = DEFAULT_PAGE_SIZE
    window: str = ""
    since: datetime | None = None
    detect: tuple[str, ...] = ()
    below: bool = False  # running fewer instances than desired (per the stored detail)
    # One clock for every query of a request, so counts, rows and windows agree.
    now: datetime = field(default_factory=timezone.now, compare=False, repr=False)

    def derived(self) -> tuple[str, ...]:
        """The computed columns this view shows (see shown())."""
        window = WINDOW_FIELDS if self.window else ()
        since = SINCE_FIELDS if self.since else ()
        return (*window, *since, *DETECTOR_FIELDS)

    def _aliases(self) -> dict:
        columns = detector_columns(self.now)
        if self.sort.lstrip("-") in DETAIL_SORTS:
            columns |= DETAIL_COLUMNS  # a join every other view goes without
        if self.since:
            columns |= since_columns(self.since)
        return columns

    def apply(
        self,
        services: QuerySet[Service],
        sources: list[Source],
        *,
        with_status: bool = True,
        with_columns: bool = True,
    ) -> QuerySet:
        """Filter (not sort) the services; tiles count with every filter but status.

        `sources` are every source, read once per request (see sources.visible()).

        Windowed numbers and detectors are aliases: correlated subqueries, so any page costs
        the same few queries, and SQL computes them only where a filter, sort or shown() uses
        them. A count needs them only to filter by a detector (with_columns=False): building
        them is a good part of a request's Python time.
        """
        services = visible(services, sources)
        if self.source:
            named = [source.pk for source in sources if source.name == self.source]
            services = services.filter(source_id__in=named)
        if with_columns and self.window:
            services = with_window(services, self.window)
        if with_columns or self.detect:
            services = services.alias(**self._aliases())
        if self.detect:
            wanted = Q()
            for name in self.detect:
                wanted |= detected(name, self.now)
            services = services.filter(wanted)
        if self.below:
            services = services.filter(detail__running_instances__lt=F("detail__desired_instances"))
        if with_status and self.statuses:
            # Severity follows from status: saying so lets the default sort's index serve it.
            wanted_severities = sorted({severity(status) for status in self.statuses})
            services = services.filter(status__in=self.statuses, severity__in=wanted_severities)
        if self.infer_type:
            services = services.filter(infer_type=self.infer_type)
        if self.owner:
            services = services.filter(owner=self.owner)
        if self.q:
            services = services.filter(search(self.q))
        return services

    def ordered(self, services: QuerySet[Service], *, plain: bool = False) -> QuerySet[Service]:
        """Sorted by the view's sort; `plain`: with the database's own place for NULLs."""
        descending = self.sort.startswith("-")
        order = []
        for column in SORTS[self.sort.lstrip("-")]:
            name = column.lstrip("-")
            # NULLs (unknown) go last either way: they are never what anyone is looking for.
            nulls_last = True if name in NULLABLE and not plain else None
            if descending != column.startswith("-"):
                order.append(F(name).desc(nulls_last=nulls_last))
            else:
                order.append(F(name).asc(nulls_last=nulls_last))
        return services.order_by(*order)

    def rows(self, services: QuerySet[Service], sources: list[Source]) -> list[QuerySet[Service]]:
        """The view's rows, filtered and sorted, with the derived columns it shows: one query,
        or two to read one after the other (see ONE_INDEX_NULLABLE)."""
        filtered = self.apply(services, sources)
        leading = SORTS[self.sort.lstrip("-")][0]
        if not (
            self.sort.startswith("-") and leading in ONE_INDEX_NULLABLE and nulls_first_descending()
        ):
            return [self.shown(self.ordered(filtered))]
        # The rows with a value, then those without, each read in its index's own order.
        return [
            self.shown(self.ordered(filtered.filter(**{f"{leading}__isnull": unknown}), plain=True))
            for unknown in (False, True)
        ]

    def shown(self, services: QuerySet[Service]) -> QuerySet[Service]:
        """Select the derived columns the page shows (aliases are otherwise left out), and
        each owner's name where an admin gave one."""
        derived = {name: F(name) for name in self.derived()}
        return services.annotate(**derived, owner_name=OWNER_NAME)

    def status_counts(self, services: QuerySet[Service], sources: list[Source]) -> dict[str, int]:
        """Services per status under every filter but status: the tiles, and (summed over the
        chosen statuses) the table's count, from one query."""
        return per_status(self.counts_by_source(services, sources))

    def counts_by_source(
        self, services: QuerySet[Service], sources: list[Source]
    ) -> dict[tuple[str, int], int]:
        """Services per (status, source id) under every filter but status."""
        return {
            (row["status"], row["source_id"]): row["n"] for row in self.counting(services, sources)
        }

    def counting(self, services: QuerySet[Service], sources: list[Source]) -> QuerySet:
        """The query behind the counts: the service_status index (status, source) answers it
        unfiltered, in its own order."""
        rows = self.apply(services, sources, with_status=False, with_columns=False)
        return rows.values("status", "source_id").annotate(n=Count("*")).order_by()

    def count(self, status_counts: dict[str, int]) -> int:
        """The number of rows this view has, from its status_counts()."""
        if not self.statuses:
            return sum(status_counts.values())
        return sum(status_counts.get(status, 0) for status in self.statuses)

    def is_filtered(self) -> bool:
        return bool(
            self.statuses
            or self.infer_type
            or self.owner
            or self.source
            or self.q
            or self.detect
            or self.below
        )


# The owner's name (see OwnerName) beside the id, looked up by its unique index.
OWNER_NAME = Subquery(OwnerName.objects.filter(owner_id=OuterRef("owner")).values("name")[:1])

# Columns neither the table nor /api/services shows (the service page reads them).
UNSHOWN = ("raw", "additional_properties", "schedule")
# The owner and type choice lists: at most this many values.
CHOICES_MAX = 200


def page_of(view: ServiceFilter, sources: list[Source], *, empty: bool) -> tuple[Page, dict]:
    """One page of the view, and its services per (status, source id) (the tiles), in two
    queries."""
    services = Service.objects.all()
    if empty:
        return Paginator(services.none(), view.per_page).get_page(1), {}
    by_source = counted_per_snapshot(view, services, sources)
    # The raw item and JSON fields stay unread: the table and the JSON list never show them.
    parts = view.rows(services.defer(*UNSHOWN), sources)
    paginator = CountedPaginator(parts, view.per_page, count=view.count(per_status(by_source)))
    return paginator.get_page(view.page), by_source


# Counts of a snapshot, kept for a few polls' time: a key names the snapshot, so an entry is
# never stale, only unused once a poll lands.
COUNTS_SECONDS = 600


def counted_per_snapshot(
    view: ServiceFilter, services: QuerySet[Service], sources: list[Source]
) -> dict[tuple[str, int], int]:
    """view.counts_by_source(), counted once per poll in each process rather than per page.

    Only a poll writes services, and in its own transaction moves its source's
    last_success_at: with every source's in the key, a count is reused only while the rows it
    counted stand. Under polls that rewrite most of 100,000 rows, PostgreSQL's count read the
    table as well as the index (its visibility map not yet set): 70 of a page's 108 ms.
    Detectors and instances filters depend on the clock and on fetched details: counted afresh.
    """
    if view.detect or view.below or any(source.last_success_at is None for source in sources):
        return view.counts_by_source(services, sources)
    snapshot = [(source.pk, source.enabled, source.last_success_at) for source in sources]
    filters = (view.infer_type, view.owner, view.source, view.q)
    key = "counts:" + hashlib.blake2b(repr((snapshot, filters)).encode()).hexdigest()
    counts = cache.get(key)
    if counts is None:
        counts = view.counts_by_source(services, sources)
        cache.set(key, counts, COUNTS_SECONDS)
    return counts


def per_status(by_source: dict[tuple[str, int], int]) -> dict[str, int]:
    """Counts per (status, source id), summed over the sources."""
    counts: dict[str, int] = {}
    for (status, _), n in by_source.items():
        counts[status] = counts.get(status, 0) + n
    return counts


class CountedPaginator(Paginator):
    """A paginator over a view's rows, in one or two parts (see ServiceFilter.rows), told its
    count (the tiles' query has it already), that reads a page past the middle of a part from
    its far end, in the reverse order: OFFSET skips rows one by one, so the last page would
    otherwise cost a walk through the whole index."""

    def __init__(self, parts: list[QuerySet], per_page: int, *, count: int):
        super().__init__(parts[0], per_page)
        self.parts = parts
        self.known_count = count

    @property
    def count(self) -> int:
        return self.known_count

    def page(self, number: int | str) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = min(bottom + self.per_page, self.count)
        return self._get_page(self._rows(bottom, top), number, self)

    def _rows(self, bottom: int, top: int) -> list:
        if len(self.parts) == 1:
            return _read(self.parts[0], self.count, bottom, top)
        valued, unknown = self.parts
        rows = []
        if bottom <= self.count - top:
            # Near the front, the rows with a value come first: unless they run out before the
            # page ends, where they end need not be counted.
            rows = list(valued[bottom:top])
            if len(rows) == top - bottom:
                return rows
            if rows:
                return rows + list(unknown[: top - bottom - len(rows)])
        # The rows without a value are counted (the fewer, mostly); those with, what is left.
        unknowns = unknown.count()
        valued_count = max(self.count - unknowns, 0)
        if bottom < valued_count:
            rows = _read(valued, valued_count, bottom, min(top, valued_count))
        if top > valued_count:
            low = max(bottom - valued_count, 0)
            rows += _read(unknown, unknowns, low, min(top - valued_count, unknowns))
        return rows


def _read(rows: QuerySet, size: int, low: int, high: int) -> list:
    """Rows low..high of the `size` rows, read from the nearer end."""
    if low >= high:
        return []  # a count from before a poll: the rows it counted are gone
    if low <= size - high:
        return list(rows[low:high])
    return list(rows.reverse()[size - high : size - low])[::-1]


def choices(sources: list[Source], column: str, current: str) -> list[str]:
    """The distinct values of a column in the visible services, by a loose index scan: one
    seek in the column's index per value (a fleet has a handful of owners and types), rather
    than a read of every row."""
    values = [value for value, _ in _distinct(sources, column, "NULL")]
    # A bookmarked value no longer present stays selectable, so the form doesn't drop it.
    return values if not current or current in values else [current, *values]


def owner_choices(sources: list[Source], current: str) -> list[tuple[str, str]]:
    """The owner filter's choices as (id, what to show): the name an admin gave the owner (see
    OwnerName) first, then the ids nobody named; the names come in the same query."""
    names = connection.ops.quote_name(OwnerName._meta.db_table)
    name = f"(SELECT name FROM {names} WHERE owner_id = seen.value)"
    found = dict(_distinct(sources, "owner", name))
    if current and current not in found:
        found[current] = (
            OwnerName.objects.filter(owner_id=current).values_list("name", flat=True).first()
        )
    shown = [
        (owner, f"{label} ({owner[:8]})" if label else owner) for owner, label in found.items()
    ]
    return sorted(shown, key=lambda choice: (not found[choice[0]], choice[1].casefold()))


def _distinct(sources: list[Source], column: str, extra: str) -> list[tuple[str, object]]:
    """The loose index scan of choices(), with one more expression of each value (`extra`,
    SQL over seen.value) beside it."""
    table = connection.ops.quote_name(Service._meta.db_table)
    name = connection.ops.quote_name(column)
    disabled = disabled_ids(sources)
    # Excluded, not listed, as in visible(): so SQLite seeks in the column's index.
    where = "gone_at IS NULL"
    if disabled:
        where += f" AND source_id NOT IN ({', '.join(['%s'] * len(disabled))})"
    step = f"SELECT {name} FROM {table} WHERE {where} AND {name} > %s ORDER BY {name} LIMIT 1"
    sql = (
        f"WITH RECURSIVE seen(value, n) AS (SELECT ({step}), 1 UNION ALL "
        f"SELECT ({step.replace('> %s', '> seen.value')}), n + 1 FROM seen "
        f"WHERE seen.value IS NOT NULL AND n < {CHOICES_MAX}) "
        f"SELECT value, {extra} FROM seen WHERE value IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*disabled, "", *disabled])
        return [(row[0], row[1]) for row in cursor.fetchall()]


def alerting(services: list[Service]) -> set[int]:
    """Which of these services have an alert firing (the table's bells), in one query."""
    open_alerts = Alert.objects.filter(service__in=services, resolved_at=None, silenced=False)
    return set(open_alerts.values_list("service_id", flat=True))


def details(services: list[Service]) -> dict[int, ServiceDetail]:
    """The stored detail of each of these services that has one, in one query."""
    return {d.service_id: d for d in ServiceDetail.objects.filter(service__in=services)}
