"""The service table's query string → validated filter → queryset.

Every view of the table is a URL; these are its parameters. Invalid input is reported, never
widened into "everything".
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.db.models import Count, F, Q, QuerySet
from django.http import QueryDict

from dashboard.models import Service

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
}
DEFAULT_SORT = "status"
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

    def apply(self, services: QuerySet[Service], *, with_status: bool = True) -> QuerySet:
        """Filter (not sort) the services; tiles count with every filter but status."""
        services = services.filter(gone_at=None, source__enabled=True)
        if with_status and self.statuses:
            services = services.filter(status__in=self.statuses)
        if self.infer_type:
            services = services.filter(infer_type=self.infer_type)
        if self.owner:
            services = services.filter(owner=self.owner)
        if self.source:
            services = services.filter(source__name=self.source)
        if self.q:
            services = services.filter(
                Q(service_name__icontains=self.q)
                | Q(service_id__icontains=self.q)
                | Q(description__icontains=self.q)
            )
        return services

    def ordered(self, services: QuerySet[Service]) -> QuerySet[Service]:
        descending = self.sort.startswith("-")
        columns = SORTS[self.sort.lstrip("-")]
        if descending:
            return services.order_by(*(F(c).desc(nulls_last=True) for c in columns))
        return services.order_by(*(F(c).asc(nulls_last=True) for c in columns))

    def status_counts(self, services: QuerySet[Service]) -> dict[str, int]:
        rows = self.apply(services, with_status=False).values("status").annotate(n=Count("id"))
        return {row["status"]: row["n"] for row in rows.order_by()}

    def is_filtered(self) -> bool:
        return bool(self.statuses or self.infer_type or self.owner or self.source or self.q)

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
        }
        params.update(changes)
        defaults = {"sort": DEFAULT_SORT, "page": 1, "per_page": DEFAULT_PAGE_SIZE}
        query = QueryDict(mutable=True)
        for name, value in params.items():
            if value in ("", None, []) or defaults.get(name) == value:
                continue
            query.setlist(name, [str(v) for v in value] if isinstance(value, list) else [value])
        return query.urlencode()


def parse_filter(data: QueryDict) -> tuple[ServiceFilter, dict[str, list[str]]]:
    """The filter a query string asks for, and the errors that make it invalid (if any)."""
    form = ServiceFilterForm(data)
    if not form.is_valid():
        return ServiceFilter(), {name: list(errors) for name, errors in form.errors.items()}
    clean = form.cleaned_data
    return ServiceFilter(
        statuses=tuple(dict.fromkeys(clean["status"])),
        infer_type=clean["infer_type"],
        owner=clean["owner"],
        source=clean["source"],
        q=clean["q"],
        sort=clean["sort"] or DEFAULT_SORT,
        page=clean["page"] or 1,
        per_page=clean["per_page"] or DEFAULT_PAGE_SIZE,
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
        params.update(changes)
        query = QueryDict(mutable=True)
        for name, value in params.items():
            if value not in ("", None) and not (name == "page" and value == 1):
                query[name] = str(value)
        return query.urlencode()


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
        query = QueryDict(mutable=True)
        for name, value in values.items():
            if value in ("", None) or (name == "page" and value == 1):
                continue
            if hasattr(value, "isoformat"):
                value = value.isoformat().replace("+00:00", "Z")
            query[self.URL_NAMES.get(name, name)] = str(value)
        return query.urlencode()
