"""Query strings → validated filters, and filters → URLs: every view is an address."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django import forms
from django.db.models import (
    QuerySet,
)
from django.http import QueryDict
from django.utils.translation import ngettext, pgettext_lazy

from dashboard.models import PollRun, StatusChange
from dashboard.queries.detectors import DETECTORS
from dashboard.queries.events import status_changes
from dashboard.queries.polls import poll_runs
from dashboard.queries.services import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_SORT,
    PAGE_SIZES,
    SORTS,
    WINDOW_SORTS,
    ServiceFilter,
    default_sort,
)
from dashboard.queries.windows import WINDOWS
from dashboard.web.format import iso_utc

MAX_STATUSES = 12

ENUM_MAX_LENGTH = 32  # the width of the status and infer_type columns


def enum_value(value: str) -> None:
    """Statuses and types are open sets: any printable value the API could send, matched
    exactly (so a tile for "Running" or "real_time2" links to a view that works)."""
    # Length only (NUL is refused by every CharField): control, zero-width and right-to-left
    # characters are odd but real API data, and their tiles must link to views that work.
    if len(value) > ENUM_MAX_LENGTH:
        raise forms.ValidationError(
            ngettext(
                "Use up to %(count)s character.", "Use up to %(count)s characters.", ENUM_MAX_LENGTH
            )
            % {"count": ENUM_MAX_LENGTH},
            code="invalid",
        )


class StatusesField(forms.MultipleChoiceField):
    def validate(self, value: list[str]) -> None:
        if len(value) > MAX_STATUSES:
            raise forms.ValidationError(
                ngettext(
                    "At most %(count)s status at once.",
                    "At most %(count)s statuses at once.",
                    MAX_STATUSES,
                )
                % {"count": MAX_STATUSES}
            )
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
    # Running fewer instances than desired: below=1 (anything else is an error, not "off").
    below = forms.ChoiceField(required=False, choices=[("1", "1")])


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


@dataclass(frozen=True)
class ServiceView(ServiceFilter):
    """A filter of the service table that knows its own address."""

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
            "below": "1" if self.below else "",
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


def parse_filter(data: QueryDict) -> tuple[ServiceView, dict[str, list[str]]]:
    """The filter a query string asks for, and the errors that make it invalid (if any)."""
    form = ServiceFilterForm(data)
    if not form.is_valid():
        return ServiceView(), {name: list(errors) for name, errors in form.errors.items()}
    clean = form.cleaned_data
    window = clean["window"]
    sort = clean["sort"] or default_sort(window)
    if not window and sort.lstrip("-") in WINDOW_SORTS:
        # A windowed sort left behind when the window was cleared (from the form, say).
        sort = DEFAULT_SORT
    return ServiceView(
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
        below=clean["below"] == "1",
    ), {}


class PollFilterForm(forms.Form):
    """The poll history's query string: /polls/?source=NAME&outcome=failed&page=N."""

    source = forms.SlugField(required=False, max_length=64)
    outcome = forms.ChoiceField(
        required=False,
        choices=[
            ("ok", pgettext_lazy("poll outcome", "ok")),
            ("failed", pgettext_lazy("poll outcome", "failed")),
        ],
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000_000)

    def runs(self) -> QuerySet[PollRun]:
        """The filtered runs (call after is_valid)."""
        return poll_runs(source=self.cleaned_data["source"], outcome=self.cleaned_data["outcome"])

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

    def changes(self) -> QuerySet[StatusChange]:
        """The filtered status changes (call after is_valid)."""
        data = self.cleaned_data
        filters = {name: data[name] for name in self.base_fields if name != "page"}
        return status_changes(**filters)

    def query_string(self, **changes: object) -> str:
        values = {name: self.cleaned_data.get(name) for name in self.base_fields}
        values.update(changes)
        params = {self.URL_NAMES.get(name, name): value for name, value in values.items()}
        return encode_query(params, {"page": 1})
