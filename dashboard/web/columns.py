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

from dashboard.models import Service, ServiceDetail
from dashboard.queries.detectors import DETECTORS
from dashboard.statuses import style_for
from dashboard.web.format import ago, count, iso, rate

# A failure rate from here up is shown hot.
HOT_RATE = 0.05


@dataclass(frozen=True)
class Row:
    """What a row's cells need besides its service."""

    source_name: str
    since: str  # the view's ?since=, as shown; "" without one
    now: datetime  # the view's clock, for ages
    detector_help: dict[str, str]
    alerting: bool = False  # an alert is firing for the service
    detail: ServiceDetail | None = None  # what ModelArts last said of it beyond the list


@dataclass(frozen=True)
class Column:
    name: str  # the CSV's header, and the JSON's key unless `json` says otherwise
    value: Callable[[Service, Row], object]  # the plain value, for CSV and JSON
    label: str = ""  # the table's header ({window} is filled in); "" for no table column
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
    tag = (
        f' <span class="tag tag-changed" title="Since {row.since}: {escape(", ".join(changed))}">'
        "changed</span>"
        if changed
        else ""
    )
    # Text, not an icon: it reads the same in every font and to a screen reader.
    bell = (
        ' <span class="tag tag-alert" title="An alert is firing: see Alerts">alert</span>'
        if row.alerting
        else ""
    )
    return (
        f'<td class="name"><a class="service-link" href="{link}" hx-boost="false">'
        f'<span class="service-name">{escape(service.service_name or "(no name)")}</span></a>'
        f'{bell}{tag} <span class="service-id"><code>{service_id}</code><button type="button" '
        f'class="copy" data-copy="{service_id}" title="Copy id" hidden>copy</button></span></td>'
    )


def _status_cell(service: Service, row: Row) -> str:
    """The status badge, the detectors that fire, and a deploying service's progress (when the
    API gives it) in the badge and in a bar beside it."""
    style = style_for(service.status)
    deploying = service.status == "deploying" and service.progress is not None
    label = style.label + ("…" if style.busy else "")
    if deploying:
        label += f" {service.progress}%"
    parts = [f'<span class="badge badge-{style.tone}">{escape(label)}</span>']
    parts += [
        f'<span class="detector detector-{name}" title="{escape(row.detector_help[name])}">'
        f"{name}</span>"
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
    return f"<td>{escape(service.infer_type or '—')}</td>"


def _owner_cell(service: Service, row: Row) -> str:
    owner = escape(truncatechars(service.owner, 10) or "—")
    return f'<td class="owner" title="{escape(service.owner)}"><code>{owner}</code></td>'


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
        "Source",
        cell=lambda service, row: f'<td class="source">{escape(row.source_name)}</td>',
        table_needs="sources",
    ),
    Column("service_id", _field("service_id")),
    Column("service_name", _field("service_name"), "Service", "name", _name_cell),
    Column("description", _field("description")),
    Column("status", _field("status"), "Status", "status", _status_cell),
    Column("progress", _field("progress")),
    Column(
        "infer_type",
        _field("infer_type"),
        "Type",
        "type",
        _type_cell,
    ),
    Column("owner", _field("owner"), "Owner", "owner", _owner_cell),
    Column("workspace_id", _field("workspace_id")),
    Column(
        "invocation_times",
        _field("invocation_times"),
        "Invocations",
        "calls",
        _number_cell("invocation_times"),
        numeric=True,
    ),
    Column(
        "failed_times",
        _field("failed_times"),
        "Failures",
        "failures",
        _number_cell("failed_times"),
        numeric=True,
    ),
    Column(
        "failure_rate",
        _field("failure_rate"),
        "Failure rate",
        "rate",
        _rate_cell("failure_rate"),
        numeric=True,
    ),
    Column(
        "calls_in_window",
        _field("w_calls"),
        "Calls ({window})",
        "wcalls",
        _number_cell("w_calls"),
        numeric=True,
        needs="window",
        json="window.calls",
    ),
    Column(
        "failures_in_window",
        _field("w_failures"),
        "Failures ({window})",
        "wfailures",
        _number_cell("w_failures"),
        numeric=True,
        needs="window",
        json="window.failures",
    ),
    Column(
        "failure_rate_in_window",
        _field("w_rate"),
        "Failure rate ({window})",
        "wrate",
        _rate_cell("w_rate"),
        numeric=True,
        needs="window",
        json="window.failure_rate",
    ),
    Column(
        "calls_since_previous_poll",
        _field("calls_delta"),
        "Calls since last poll",
        "delta",
        _number_cell("calls_delta"),
        numeric=True,
    ),
    Column(
        "running_instances",
        _detail_value("running_instances"),
        "Instances",
        "instances",
        _instances_cell,
        numeric=True,
        json="detail.running_instances",
    ),
    Column(
        "desired_instances", _detail_value("desired_instances"), json="detail.desired_instances"
    ),
    Column(
        "reason", _detail_value("error_msg"), "Reason", "reason", _reason_cell, json="detail.reason"
    ),
    Column("detail_fetched_at", _detail_value("fetched_at"), json="detail.fetched_at"),
    Column("publish_at", _field("publish_at"), "Published", "published", _published_cell),
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
        reasons.append("status changed")
    if getattr(service, "since_failing", False):
        reasons.append("new failures")
    return reasons


def detector_help() -> dict[str, str]:
    return {
        "stuck": f"Deploying, no progress for over {settings.DASHBOARD_STUCK_MINUTES} min",
        "idle": f"Running, no new calls for over {settings.DASHBOARD_IDLE_MINUTES} min",
        "flapping": (
            f"At least {settings.DASHBOARD_FLAP_CHANGES} status changes within "
            f"{settings.DASHBOARD_FLAP_MINUTES} min"
        ),
    }
