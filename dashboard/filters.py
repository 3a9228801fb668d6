"""The service table's query string → validated filter → queryset.

Every view of the table is a URL; these are its parameters. Invalid input is reported, never
widened into "everything".
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django import forms
from django.conf import settings
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Coalesce
from django.http import QueryDict
from django.utils import timezone

from dashboard.models import SEARCH_TABLE, Service, ServiceSample, Source, StatusChange
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
    "wcalls": ("w_calls", "id"),
    "wfailures": ("w_failures", "id"),
    "wrate": ("w_rate", "id"),
    "failing": ("-w_rank_rate", "severity", "service_name", "id"),
}
# Columns that may be NULL: they sort NULLS LAST, the others plainly, so that each ORDER BY
# reads its index as stored (an index scan cannot skip NULLs it does not hold).
NULLABLE = frozenset(
    {f.column for f in Service._meta.concrete_fields if f.null}
    | {"w_calls", "w_failures", "w_rate", "w_rank_rate"}
)
# The trigram search index cannot match fewer characters than this.
TRIGRAM = 3
ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
WINDOW_SORTS = ("wcalls", "wfailures", "wrate", "failing")
DEFAULT_SORT = "status"
# With a window, the table opens on what is failing now.
DEFAULT_WINDOW_SORT = "failing"
WINDOWS: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
DETECTORS = ("stuck", "idle", "flapping")
PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
MAX_STATUSES = 12
ENUM_MAX_LENGTH = 32  # the width of the status and infer_type columns


def enum_value(value: str) -> None:
    """Statuses and types are open sets: any printable value the API could send, matched
    exactly (so a tile for "Running" or "real_time2" links to a view that works)."""
    # Length only (NUL is refused by every CharField): control, zero-width and right-to-left
    # characters are odd but real API data, and their tiles must link to views that work.
    if len(value) > ENUM_MAX_LENGTH:
        raise forms.ValidationError(f"Use up to {ENUM_MAX_LENGTH} characters.", code="invalid")


class StatusesField(forms.MultipleChoiceField):
    def validate(self, value: list[str]) -> None:
        if len(value) > MAX_STATUSES:
            raise forms.ValidationError(f"At most {MAX_STATUSES} statuses at once.")
        for item in value:
            enum_value(item)


class ServiceFilterForm(forms.Form):
    status = StatusesField(required=False)
    # Not stripped: an owner or type sent with spaces around it is matched as sent.
    infer_type = forms.CharField(required=False, strip=False, validators=[enum_value])
    owner = forms.CharField(required=False, strip=False, max_length=64)
    source = forms.SlugField(required=False, max_length=64)
    q = forms.CharField(required=False, max_length=200, strip=True)
    sort = forms.ChoiceField(
        required=False, choices=[(k, k) for key in SORTS for k in (key, f"-{key}")]
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000_000)
    per_page = forms.TypedChoiceField(
        required=False, coerce=int, choices=[(str(n), n) for n in PAGE_SIZES], empty_value=None
    )
    window = forms.ChoiceField(required=False, choices=[(w, w) for w in WINDOWS])
    since = forms.DateTimeField(required=False)
    detect = forms.MultipleChoiceField(required=False, choices=[(d, d) for d in DETECTORS])


def default_sort(window: str) -> str:
    return DEFAULT_WINDOW_SORT if window else DEFAULT_SORT


def _sample_at(column: str, moment: datetime, *, latest: bool = True) -> Subquery:
    """A counter of the outer service as of `moment`: its latest sample at or before then
    (samples are written only on change), or with latest=False its first sample after."""
    samples = ServiceSample.objects.filter(service=OuterRef("pk"))
    if latest:
        samples = samples.filter(at__lte=moment).order_by("-at", "-id")
    else:
        samples = samples.filter(at__gt=moment).order_by("at", "id")
    return Subquery(samples.values(column)[:1])


def _baseline(column: str, start: datetime) -> Case:
    """The counter at `start`; for a service first seen after it, its first sample; else NULL
    (history pruned or never kept: no number is better than a wrong one)."""
    before = ServiceSample.objects.filter(service=OuterRef("pk"), at__lte=start)
    return Case(
        When(Exists(before), then=_sample_at(column, start)),
        When(first_seen_at__gt=start, then=_sample_at(column, start, latest=False)),
        default=None,
    )


def _increase(column: str, baseline: str) -> Case:
    """How much a counter grew since its baseline; NULL when unknown or reset (it went down)."""
    return Case(
        When(**{f"{column}__gte": F(baseline)}, then=F(column) - F(baseline)),
        default=None,
    )


def _window_columns(start: datetime) -> dict:
    return {
        "w_base_calls": _baseline("invocation_times", start),
        "w_base_failures": _baseline("failed_times", start),
        "w_calls": _increase("invocation_times", "w_base_calls"),
        "w_failures": _increase("failed_times", "w_base_failures"),
        "w_rate": Case(
            When(
                w_calls__gt=0,
                then=Cast("w_failures", FloatField()) / Cast("w_calls", FloatField()),
            ),
            default=None,
            output_field=FloatField(),
        ),
        # "Failing now" ranks a rate only over enough calls: 1 failure in 1 call is noise.
        "w_rank_rate": Case(
            When(w_calls__gte=settings.DASHBOARD_RATE_MIN_CALLS, then=F("w_rate")),
            default=None,
            output_field=FloatField(),
        ),
    }


def _since_columns(since: datetime) -> dict:
    changed = StatusChange.objects.filter(service=OuterRef("pk"), at__gte=since)
    return {
        "since_status": Exists(changed),
        "since_base_failures": _baseline("failed_times", since),
        "since_failing": Case(
            When(failed_times__gt=F("since_base_failures"), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
    }


def _detector_columns(now: datetime) -> dict:
    stuck_since = now - timedelta(minutes=settings.DASHBOARD_STUCK_MINUTES)
    idle_since = now - timedelta(minutes=settings.DASHBOARD_IDLE_MINUTES)
    flap_since = now - timedelta(minutes=settings.DASHBOARD_FLAP_MINUTES)
    # Any sample: one is written whenever status, progress or a counter changes.
    last_sample = ServiceSample.objects.filter(service=OuterRef("pk")).order_by("-at", "-id")
    flaps = (
        StatusChange.objects.filter(service=OuterRef("pk"), at__gte=flap_since)
        .exclude(from_status="")  # a service appearing is not a change of status
        .order_by()
        .values("service")
        .annotate(n=Count("id"))
        .values("n")
    )
    return {
        "last_sample_at": Coalesce(Subquery(last_sample.values("at")[:1]), F("first_seen_at")),
        # The calls counter as it was when the idle time began: unchanged since → idle.
        "idle_base_calls": _sample_at("invocation_times", idle_since),
        "flap_count": Coalesce(Subquery(flaps, output_field=IntegerField()), 0),
        "is_stuck": Case(
            # Status first: the subquery behind last_sample_at runs only for deployments.
            When(Q(status="deploying") & Q(last_sample_at__lt=stuck_since), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
        "is_idle": Case(
            When(
                Q(status="running")
                & Q(first_seen_at__lte=idle_since)
                & Q(invocation_times=F("idle_base_calls")),
                then=Value(True),
            ),
            default=Value(False),
            output_field=BooleanField(),
        ),
        "is_flapping": Case(
            When(flap_count__gte=settings.DASHBOARD_FLAP_CHANGES, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
    }


# Derived columns shown on the page (the others are steps towards them).
WINDOW_FIELDS = ("w_calls", "w_failures", "w_rate")
SINCE_FIELDS = ("since_status", "since_failing")
DETECTOR_FIELDS = tuple(f"is_{name}" for name in DETECTORS)


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
    # One clock for every query of a request, so counts, rows and windows agree.
    now: datetime = field(default_factory=timezone.now, compare=False, repr=False)

    def derived(self) -> tuple[str, ...]:
        """The computed columns this view shows (see shown())."""
        window = WINDOW_FIELDS if self.window else ()
        since = SINCE_FIELDS if self.since else ()
        return (*window, *since, *DETECTOR_FIELDS)

    def _aliases(self) -> dict:
        columns = _detector_columns(self.now)
        if self.window:
            columns |= _window_columns(self.now - WINDOWS[self.window])
        if self.since:
            columns |= _since_columns(self.since)
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

        `sources` are every source, read once per request: the services of disabled ones are
        left out by id rather than by a join on source.enabled, and by exclusion, so that
        SQLite answers counts from the status index and sorts from the sort indexes (with
        `source_id IN (…)` it would pick the source_id index, and read every row).

        Windowed numbers and detectors are aliases: correlated subqueries, so any page costs
        the same few queries, and SQL computes them only where a filter, sort or shown() uses
        them. A count needs them only to filter by a detector (with_columns=False): building
        them is a good part of a request's Python time.
        """
        services = services.filter(gone_at=None)
        disabled = disabled_ids(sources)
        if disabled:
            services = services.exclude(source_id__in=disabled)
        if self.source:
            named = [source.pk for source in sources if source.name == self.source]
            services = services.filter(source_id__in=named)
        if with_columns or self.detect:
            services = services.alias(**self._aliases())
        if self.detect:
            wanted = Q()
            for name in self.detect:
                wanted |= Q(**{f"is_{name}": True})
            services = services.filter(wanted)
        if with_status and self.statuses:
            # Severity follows from status: saying so lets the default sort's index serve it.
            wanted_severities = sorted({severity(status) for status in self.statuses})
            services = services.filter(status__in=self.statuses, severity__in=wanted_severities)
        if self.infer_type:
            services = services.filter(infer_type=self.infer_type)
        if self.owner:
            services = services.filter(owner=self.owner)
        if self.q:
            services = services.filter(self._search())
        return services

    def _search(self) -> Q:
        """Case-insensitive substring of name, id or description, served by a trigram index:
        on PostgreSQL pg_trgm's GIN indexes serve the LIKE itself; on SQLite the FTS5 table
        finds the same rows (see the 0002 migration), short queries aside."""
        if connection.vendor != "sqlite" or len(self.q) < TRIGRAM:
            return (
                Q(service_name__icontains=self.q)
                | Q(service_id__icontains=self.q)
                | Q(description__icontains=self.q)
            )
        # As lower() wrote the index: ASCII letters only, the way SQLite's LIKE folds case.
        phrase = '"' + self.q.translate(ASCII_LOWER).replace('"', '""') + '"'
        table = connection.ops.quote_name(Service._meta.db_table)
        # "+id": the matches are checked while a sort or status index is read in order; as
        # the driving index they would cost one row lookup per match before any sort.
        matches = RawSQL(
            f"+{table}.id IN (SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH %s)",
            [phrase],
            output_field=BooleanField(),
        )
        return Q(matches)

    def ordered(self, services: QuerySet[Service]) -> QuerySet[Service]:
        descending = self.sort.startswith("-")
        order = []
        for column in SORTS[self.sort.lstrip("-")]:
            name = column.lstrip("-")
            # NULLs (unknown) go last either way: they are never what anyone is looking for.
            nulls_last = True if name in NULLABLE else None
            if descending != column.startswith("-"):
                order.append(F(name).desc(nulls_last=nulls_last))
            else:
                order.append(F(name).asc(nulls_last=nulls_last))
        return services.order_by(*order)

    def rows(self, services: QuerySet[Service], sources: list[Source]) -> QuerySet[Service]:
        """The view's rows, filtered and sorted, with the derived columns it shows."""
        return self.shown(self.ordered(self.apply(services, sources)))

    def shown(self, services: QuerySet[Service]) -> QuerySet[Service]:
        """Select the derived columns the page shows (aliases are otherwise left out)."""
        return services.annotate(**{name: F(name) for name in self.derived()})

    def status_counts(self, services: QuerySet[Service], sources: list[Source]) -> dict[str, int]:
        """Services per status under every filter but status: the tiles, and (summed over the
        chosen statuses) the table's count, from one query."""
        return {row["status"]: row["n"] for row in self.counting(services, sources)}

    def counting(self, services: QuerySet[Service], sources: list[Source]) -> QuerySet:
        """The query behind status_counts(): the service_status index answers it unfiltered."""
        rows = self.apply(services, sources, with_status=False, with_columns=False)
        return rows.values("status").annotate(n=Count("*")).order_by()

    def count(self, status_counts: dict[str, int]) -> int:
        """The number of rows this view has, from its status_counts()."""
        if not self.statuses:
            return sum(status_counts.values())
        return sum(status_counts.get(status, 0) for status in self.statuses)

    def is_filtered(self) -> bool:
        return bool(
            self.statuses or self.infer_type or self.owner or self.source or self.q or self.detect
        )

    def url(self, **changes: object) -> str:
        """The address of this view (with some parameters changed)."""
        query = self.query_string(**changes)
        return f"/?{query}" if query else "/"

    def query_string(self, **changes: object) -> str:
        """This view's URL query, with some parameters changed; defaults are left out."""
        params = {
            "status": list(self.statuses),
            "infer_type": self.infer_type,
            "owner": self.owner,
            "source": self.source,
            "q": self.q,
            "sort": self.sort,
            "page": self.page,
            "per_page": self.per_page,
            "window": self.window,
            "since": self.since,
            "detect": list(self.detect),
        }
        params.update(changes)
        defaults = {
            "sort": default_sort(str(params["window"] or "")),
            "page": 1,
            "per_page": DEFAULT_PAGE_SIZE,
        }
        return encode_query(params, defaults)

    def without_window(self) -> str:
        """This view without its window (and without a sort that needs one)."""
        sort = DEFAULT_SORT if self.sort.lstrip("-") in WINDOW_SORTS else self.sort
        return self.url(window="", sort=sort, page=1)


def disabled_ids(sources: list[Source]) -> list[int]:
    """The sources whose services every view leaves out."""
    return [source.pk for source in sources if not source.enabled]


def iso_utc(moment: datetime) -> str:
    """ISO 8601 with a Z, as every URL, JSON and CSV of the dashboard writes times."""
    return moment.isoformat().replace("+00:00", "Z")


def encode_query(params: dict[str, object], defaults: dict[str, object]) -> str:
    """A query string of the set parameters, in order; empty and default values left out, so
    every view has one address (bookmarks and saved views compare equal)."""
    query = QueryDict(mutable=True)
    for name, value in params.items():
        if value in ("", None, []) or defaults.get(name) == value:
            continue
        values = value if isinstance(value, list) else [value]
        query.setlist(name, [iso_utc(v) if isinstance(v, datetime) else str(v) for v in values])
    return query.urlencode()


def parse_filter(data: QueryDict) -> tuple[ServiceFilter, dict[str, list[str]]]:
    """The filter a query string asks for, and the errors that make it invalid (if any)."""
    form = ServiceFilterForm(data)
    if not form.is_valid():
        return ServiceFilter(), {name: list(errors) for name, errors in form.errors.items()}
    clean = form.cleaned_data
    window = clean["window"]
    sort = clean["sort"] or default_sort(window)
    if not window and sort.lstrip("-") in WINDOW_SORTS:
        # A windowed sort left behind when the window was cleared (from the form, say).
        sort = DEFAULT_SORT
    return ServiceFilter(
        statuses=tuple(dict.fromkeys(clean["status"])),
        infer_type=clean["infer_type"],
        owner=clean["owner"],
        source=clean["source"],
        q=clean["q"],
        sort=sort,
        page=clean["page"] or 1,
        per_page=clean["per_page"] or DEFAULT_PAGE_SIZE,
        window=window,
        since=clean["since"],
        detect=tuple(name for name in DETECTORS if name in clean["detect"]),
    ), {}


class PollFilterForm(forms.Form):
    """The poll history's query string: /polls/?source=NAME&outcome=failed&page=N."""

    source = forms.SlugField(required=False, max_length=64)
    outcome = forms.ChoiceField(required=False, choices=[("ok", "ok"), ("failed", "failed")])
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000_000)

    def runs(self, runs: QuerySet) -> QuerySet:
        """The filtered runs (call after is_valid)."""
        data = self.cleaned_data
        if data["source"]:
            runs = runs.filter(source__name=data["source"])
        if data["outcome"]:
            runs = runs.filter(ok=data["outcome"] == "ok")
        return runs

    def query_string(self, **changes: object) -> str:
        params = {name: self.cleaned_data.get(name) for name in ("source", "outcome", "page")}
        return encode_query({**params, **changes}, {"page": 1})


class EventFilterForm(forms.Form):
    """The events feed's query string: /events/?source=…&from=…&to=…&service=…&after=…&before=…"""

    source = forms.SlugField(required=False, max_length=64)
    # "from"/"to" are Python keywords: the form's fields carry a suffix, the URL does not.
    from_status = forms.CharField(required=False, validators=[enum_value])
    to_status = forms.CharField(required=False, validators=[enum_value])
    service = forms.CharField(required=False, max_length=128, strip=True)
    after = forms.DateTimeField(required=False)
    before = forms.DateTimeField(required=False)
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000_000)

    URL_NAMES = {"from_status": "from", "to_status": "to"}

    def __init__(self, query: QueryDict):
        data = {name: query.get(self.URL_NAMES.get(name, name), "") for name in self.base_fields}
        super().__init__(data)

    def changes(self, changes: QuerySet) -> QuerySet:
        """The filtered status changes (call after is_valid)."""
        data = self.cleaned_data
        if data["source"]:
            changes = changes.filter(source__name=data["source"])
        if data["from_status"]:
            # "appeared" is how the feed names a service's first sighting (no previous status).
            wanted = "" if data["from_status"] == "appeared" else data["from_status"]
            changes = changes.filter(from_status=wanted)
        if data["to_status"]:
            changes = changes.filter(to_status=data["to_status"])
        if data["service"]:
            changes = changes.filter(
                Q(service__service_id=data["service"])
                | Q(service__service_name__icontains=data["service"])
            )
        if data["after"]:
            changes = changes.filter(at__gte=data["after"])
        if data["before"]:
            changes = changes.filter(at__lt=data["before"])
        return changes

    def query_string(self, **changes: object) -> str:
        values = {name: self.cleaned_data.get(name) for name in self.base_fields}
        values.update(changes)
        params = {self.URL_NAMES.get(name, name): value for name, value in values.items()}
        return encode_query(params, {"page": 1})
