"""The service table's columns, specified once: the table's headers and cells, the CSV export
and /api/services all read this list.

Cells are HTML built in Python: at 50 rows of about 30 values each, Django's template engine
took 4 ms a page, as long as the page's SQL at 100,000 services. Every text goes through
escape(), as the template's autoescaping did; what is left out is fixed markup, class names of
our own, and numbers formatted from numeric columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from html import escape
from urllib.parse import quote, urlencode

from django.conf import settings
from django.template.defaultfilters import truncatechars
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy, ngettext, pgettext, pgettext_lazy

from dashboard.models import Service, ServiceDetail
from dashboard.queries.detectors import DETECTORS
from dashboard.statuses import infer_type_label, style_for
from dashboard.web.format import ago, count, iso, rate

# A failure rate from here up is shown hot.
HOT_RATE = 0.05


@dataclass(frozen=True)
class Row:
    """What a row's cells need besides its service."""

    source_name: str
    since: str  # the view's ?since=, as shown; "" without one
    now: datetime  # the view's clock, for ages
    detector_help: dict[str, tuple[str, str]]  # by detector: (its name shown, what it means)
    alerting: bool = False  # an alert is firing for the service
    detail: ServiceDetail | None = None  # what ModelArts last said of it beyond the list


@dataclass(frozen=True)
class Column:
    name: str  # the CSV's header, and the JSON's key unless `json` says otherwise
    value: Callable[[Service, Row], object]  # the plain value, for CSV and JSON
    label: str | Promise = ""  # the table's header ({window} is filled in); "" for no column
    sort: str = ""  # the header's sort key in the URL
    cell: Callable[[Service, Row], str] | None = None  # the table's <td>
    numeric: bool = False  # right-aligned; sorts biggest first on the first click
    needs: str = ""  # "window" or "since": only in views that have one
    table_needs: str = ""  # "sources": a table column only when several sources are shown
    json: str | None = None  # "window.calls" nests; "" leaves it out of the JSON

    @property
    def json_path(self) -> tuple[str, ...]:
        return tuple((self.name if self.json is None else self.json).split("."))


def _field(name: str) -> Callable[[Service, Row], object]:
    return lambda service, row: getattr(service, name)


def _flag(name: str) -> Callable[[Service, Row], object]:
    """A derived flag: absent (False) when the view did not select it."""
    return lambda service, row: getattr(service, name, False)


def service_link(service_id: str, source_name: str) -> str:
    """A service's page; the source says which, when several have a service of that id."""
    return f"/services/{quote(service_id, safe='')}/?{urlencode({'source': source_name})}"


def _name_cell(service: Service, row: Row) -> str:
    service_id = escape(service.service_id)
    link = escape(service_link(service.service_id, row.source_name))
    changed = changed_reasons(service)
    tag = ""
    if changed:
        reasons = pgettext("list separator", ", ").join(changed)
        title = gettext("Since %(time)s: %(reasons)s") % {"time": row.since, "reasons": reasons}
        tag = (
            f' <span class="tag tag-changed" title="{escape(title)}">'
            f"{escape(pgettext('row tag', 'changed'))}</span>"
        )
    # Text, not an icon: it reads the same in every font and to a screen reader.
    bell = (
        f' <span class="tag tag-alert" title="{escape(gettext("An alert is firing: see Alerts"))}">'
        f"{escape(pgettext('row tag', 'alert'))}</span>"
        if row.alerting
        else ""
    )
    name = service.service_name or gettext("(no name)")
    # One tab stop per row, the name's link: the copy button (tabindex -1) serves the mouse, the
    # id stays selectable text for everyone.
    return (
        f'<td class="name"><a class="service-link" href="{link}" hx-boost="false">'
        f'<span class="service-name">{escape(name)}</span></a>'
        f'{bell}{tag} <span class="service-id"><code>{service_id}</code><button type="button" '
        f'class="copy" tabindex="-1" data-copy="{service_id}" '
        f'title="{escape(gettext("Copy id"))}" hidden>'
        f"{escape(pgettext('button', 'copy'))}</button></span></td>"
    )


def _status_cell(service: Service, row: Row) -> str:
    """The status badge, the detectors that fire, and a deploying service's progress (when the
    API gives it) in the badge and in a bar beside it."""
    style = style_for(service.status)
    deploying = service.status == "deploying" and service.progress is not None
    label = str(style.label) + ("…" if style.busy else "")
    if deploying:
        label += f" {service.progress}%"
    parts = [f'<span class="badge badge-{style.tone}">{escape(label)}</span>']
    parts += [
        f'<span class="detector detector-{name}" title="{escape(row.detector_help[name][1])}">'
        f"{escape(row.detector_help[name][0])}</span>"
        for name in DETECTORS
        if getattr(service, f"is_{name}", False)
    ]
    if deploying:
        progress = escape(str(service.progress))
        parts.append(
            f'<progress class="progress" value="{progress}" max="100">{progress}%</progress>'
        )
    return f"<td>{' '.join(parts)}</td>"


def _type_cell(service: Service, row: Row) -> str:
    return f"<td>{escape(infer_type_label(service.infer_type) or '—')}</td>"


def _owner_cell(service: Service, row: Row) -> str:
    """The owner's name where an admin gave one (see OwnerName), else the id cut short; the
    whole id on hover either way."""
    title = escape(service.owner)
    name = getattr(service, "owner_name", None)
    if name:
        return f'<td class="owner" title="{title}">{escape(truncatechars(name, 24))}</td>'
    owner = escape(truncatechars(service.owner, 10) or "—")
    return f'<td class="owner" title="{title}"><code>{owner}</code></td>'


def _number_cell(name: str) -> Callable[[Service, Row], str]:
    return lambda service, row: f'<td class="num">{count(getattr(service, name))}</td>'


def _rate_cell(name: str) -> Callable[[Service, Row], str]:
    """A failure rate's cell; hot when high enough to stand out."""

    def cell(service: Service, row: Row) -> str:
        value = getattr(service, name)
        css = "num hot" if value and value >= HOT_RATE else "num"
        return f'<td class="{css}">{escape(rate(value))}</td>'

    return cell


def _detail_value(name: str) -> Callable[[Service, Row], object]:
    return lambda service, row: getattr(row.detail, name) if row.detail else None


def _instances_cell(service: Service, row: Row) -> str:
    """Running/desired instances, warm when fewer run than were asked for."""
    detail = row.detail
    if detail is None or detail.desired_instances is None:
        return '<td class="num">—</td>'
    running = "?" if detail.running_instances is None else count(detail.running_instances)
    css = "num hot" if detail.below_desired else "num"
    return f'<td class="{css}">{running}/{count(detail.desired_instances)}</td>'


def _reason_cell(service: Service, row: Row) -> str:
    """ModelArts' own reason for a failure, cut short (all of it on hover and its page)."""
    reason = row.detail.error_msg if row.detail else ""
    if not reason:
        return '<td class="reason">—</td>'
    shown = escape(truncatechars(reason, 60))
    return f'<td class="reason" title="{escape(reason)}">{shown}</td>'


def _published_cell(service: Service, row: Row) -> str:
    if service.publish_at is None:
        return "<td>—</td>"
    text = iso(service.publish_at)
    return (
        f'<td><time datetime="{text}" title="{text}">{ago(service.publish_at, row.now)}</time></td>'
    )


COLUMNS: tuple[Column, ...] = (
    Column(
        "source",
        lambda service, row: row.source_name,
        gettext_lazy("Source"),
        cell=lambda service, row: f'<td class="source">{escape(row.source_name)}</td>',
        table_needs="sources",
    ),
    Column("service_id", _field("service_id")),
    Column("service_name", _field("service_name"), gettext_lazy("Service"), "name", _name_cell),
    Column("description", _field("description")),
    Column("status", _field("status"), gettext_lazy("Status"), "status", _status_cell),
    Column("progress", _field("progress")),
    Column(
        "infer_type",
        _field("infer_type"),
        gettext_lazy("Type"),
        "type",
        _type_cell,
    ),
    Column("owner", _field("owner"), gettext_lazy("Owner"), "owner", _owner_cell),
    Column("owner_name", lambda service, row: getattr(service, "owner_name", None)),
    Column("workspace_id", _field("workspace_id")),
    Column(
        "invocation_times",
        _field("invocation_times"),
        gettext_lazy("Invocations"),
        "calls",
        _number_cell("invocation_times"),
        numeric=True,
    ),
    Column(
        "failed_times",
        _field("failed_times"),
        pgettext_lazy("column", "Failures"),
        "failures",
        _number_cell("failed_times"),
        numeric=True,
    ),
    Column(
        "failure_rate",
        _field("failure_rate"),
        gettext_lazy("Failure rate"),
        "rate",
        _rate_cell("failure_rate"),
        numeric=True,
    ),
    Column(
        "calls_in_window",
        _field("w_calls"),
        gettext_lazy("Calls ({window})"),
        "wcalls",
        _number_cell("w_calls"),
        numeric=True,
        needs="window",
        json="window.calls",
    ),
    Column(
        "failures_in_window",
        _field("w_failures"),
        gettext_lazy("Failures ({window})"),
        "wfailures",
        _number_cell("w_failures"),
        numeric=True,
        needs="window",
        json="window.failures",
    ),
    Column(
        "failure_rate_in_window",
        _field("w_rate"),
        gettext_lazy("Failure rate ({window})"),
        "wrate",
        _rate_cell("w_rate"),
        numeric=True,
        needs="window",
        json="window.failure_rate",
    ),
    Column(
        "calls_since_previous_poll",
        _field("calls_delta"),
        gettext_lazy("Calls since last poll"),
        "delta",
        _number_cell("calls_delta"),
        numeric=True,
    ),
    Column(
        "running_instances",
        _detail_value("running_instances"),
        gettext_lazy("Instances"),
        "instances",
        _instances_cell,
        numeric=True,
        json="detail.running_instances",
    ),
    Column(
        "desired_instances", _detail_value("desired_instances"), json="detail.desired_instances"
    ),
    Column(
        "reason",
        _detail_value("error_msg"),
        gettext_lazy("Reason"),
        "reason",
        _reason_cell,
        json="detail.reason",
    ),
    Column("detail_fetched_at", _detail_value("fetched_at"), json="detail.fetched_at"),
    Column(
        "publish_at", _field("publish_at"), gettext_lazy("Published"), "published", _published_cell
    ),
    Column("transition_at", _field("transition_at")),
    Column("status_changed_at", _field("status_changed_at")),
    Column("first_seen_at", _field("first_seen_at")),
    Column(
        "status_changed_since",
        _flag("since_status"),
        needs="since",
        json="changed_since.status",
    ),
    Column(
        "failing_since",
        _flag("since_failing"),
        needs="since",
        json="changed_since.failures",
    ),
    Column(
        "recovered_since",
        _flag("since_recovered"),
        needs="since",
        json="changed_since.recovered",
    ),
    Column(
        "failure_rate_before_since",
        _field("since_rate_before"),
        needs="since",
        json="changed_since.failure_rate_before",
    ),
    Column(
        "failure_rate_since",
        _field("since_rate"),
        needs="since",
        json="changed_since.failure_rate",
    ),
    *(Column(name, _flag(f"is_{name}"), json=f"detectors.{name}") for name in DETECTORS),
)


def columns_for(*, window: str, since: object) -> list[Column]:
    """The columns of a view: those that need a window or a since only when it has one."""
    present = {"window": bool(window), "since": since is not None, "": True}
    return [column for column in COLUMNS if present[column.needs]]


def table_columns(columns: list[Column], *, many_sources: bool) -> list[Column]:
    """The ones the table shows: the Source column only when there is more than one."""
    present = {"sources": many_sources, "": True}
    return [c for c in columns if c.cell is not None and present[c.table_needs]]


def changed_reasons(service: Service) -> list[str]:
    """Why a row is highlighted under ?since= (empty without it, or if nothing changed)."""
    reasons = []
    if getattr(service, "since_status", False):
        reasons.append(gettext("status changed"))
    rates = {
        "before": rate(getattr(service, "since_rate_before", None)),
        "after": rate(getattr(service, "since_rate", None)),
    }
    if getattr(service, "since_failing", False):
        reasons.append(gettext("failure rate up, %(before)s → %(after)s") % rates)
    if getattr(service, "since_recovered", False):
        reasons.append(gettext("failure rate down, %(before)s → %(after)s") % rates)
    return reasons


DETECTOR_NAMES = {
    "stuck": pgettext_lazy("detector", "stuck"),
    "idle": pgettext_lazy("detector", "idle"),
    "flapping": pgettext_lazy("detector", "flapping"),
}


def detector_label(name: str) -> str:
    return str(DETECTOR_NAMES.get(name, name))


def detector_help() -> dict[str, tuple[str, str]]:
    """Each detector's name, as shown, and what it means with this dashboard's thresholds."""
    changes = settings.DASHBOARD_FLAP_CHANGES
    meanings = {
        "stuck": gettext("Deploying, no progress for over %(minutes)s min")
        % {"minutes": settings.DASHBOARD_STUCK_MINUTES},
        "idle": gettext("Running, no new calls for over %(minutes)s min")
        % {"minutes": settings.DASHBOARD_IDLE_MINUTES},
        "flapping": ngettext(
            "At least %(changes)s status change within %(minutes)s min",
            "At least %(changes)s status changes within %(minutes)s min",
            changes,
        )
        % {"changes": changes, "minutes": settings.DASHBOARD_FLAP_MINUTES},
    }
    return {name: (detector_label(name), meanings[name]) for name in DETECTORS}
