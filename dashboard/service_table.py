"""The service table's rows, rendered to HTML in Python.

The page's other parts are templates. Its rows are not: at 50 rows of about 30 values each,
Django's template engine took 4 ms a page, as long as the page's SQL at 100,000 services. The
same markup built here takes a fraction of that. Every text goes through escape(), as the
template's autoescaping did; what is left out is fixed markup, class names of our own, and
numbers formatted from numeric columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape
from urllib.parse import quote

from django.conf import settings
from django.template.defaultfilters import truncatechars
from django.utils.safestring import SafeString, mark_safe

from dashboard.filters import DETECTORS
from dashboard.models import Service
from dashboard.statuses import style_for
from dashboard.templatetags.dashboard import ago, count, iso, rate

# A failure rate from here up is shown hot.
HOT_RATE = 0.05


def rows_html(
    services: Iterable[Service], *, window: bool, since: datetime | None, now: datetime
) -> SafeString:
    """The table body's rows; with a window, its three windowed columns (shown() selected
    them); with since, the reason each changed row is highlighted; ages as of now."""
    detector_help = _detector_help()
    since_text = iso(since)
    return mark_safe(
        "".join(_row(service, detector_help, window, since_text, now) for service in services)
    )


def _row(
    service: Service, detector_help: dict[str, str], window: bool, since: str, now: datetime
) -> str:
    service_id = escape(service.service_id)
    link = escape(f"/services/{quote(service.service_id, safe='')}/")
    changed = _changed(service)
    detected = "".join(
        f'<span class="detector detector-{name}" title="{escape(detector_help[name])}">'
        f"{name}</span>"
        for name in _detected(service)
    )
    numbers = [
        _number(service.invocation_times),
        _number(service.failed_times),
        _rate(service.failure_rate),
        *(
            [_number(service.w_calls), _number(service.w_failures), _rate(service.w_rate)]
            if window
            else []
        ),
        _number(service.calls_delta),
    ]
    highlight = ' class="changed"' if changed else ""
    return "".join(
        [
            f'<tr data-service-id="{service_id}"{highlight}>',
            '<td class="name">',
            f'<a class="service-link" href="{link}" hx-boost="false"><span class="service-name">'
            f"{escape(service.service_name or '(no name)')}</span></a>",
            f' <span class="tag tag-changed" title="Since {since}: {escape(", ".join(changed))}">'
            "changed</span>"
            if changed
            else "",
            f' <span class="service-id"><code>{service_id}</code><button type="button" '
            f'class="copy" data-copy="{service_id}" title="Copy id" hidden>copy</button></span>',
            "</td>",
            f"<td>{_badge(service, detected)}</td>",
            f"<td>{escape(service.infer_type or '—')}</td>",
            f'<td class="owner" title="{escape(service.owner)}">'
            f"<code>{escape(truncatechars(service.owner, 10) or '—')}</code></td>",
            *numbers,
            f"<td>{_published(service.publish_at, now)}</td>",
            "</tr>\n",
        ]
    )


def _badge(service: Service, detected: str) -> str:
    """The status badge, the detectors that fire, and a deploying service's progress (when the
    API gives it) in the badge and in a bar beside it."""
    style = style_for(service.status)
    deploying = service.status == "deploying" and service.progress is not None
    label = style.label + ("…" if style.busy else "")
    if deploying:
        label += f" {service.progress}%"
    parts = [f'<span class="badge badge-{style.tone}">{escape(label)}</span>']
    if detected:
        parts.append(detected)
    if deploying:
        progress = escape(str(service.progress))
        parts.append(
            f'<progress class="progress" value="{progress}" max="100">{progress}%</progress>'
        )
    return " ".join(parts)


def _number(value: int | None) -> str:
    return f'<td class="num">{count(value)}</td>'


def _rate(value: float | None) -> str:
    """A failure rate's cell; hot when high enough to stand out."""
    css = "num hot" if value and value >= HOT_RATE else "num"
    return f'<td class="{css}">{escape(rate(value))}</td>'


def _published(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "—"
    text = iso(moment)
    return f'<time datetime="{text}" title="{text}">{ago(moment, now)}</time>'


def _detected(service: Service) -> list[str]:
    """The detectors that fire for a row (shown() selected their flags)."""
    return [name for name in DETECTORS if getattr(service, f"is_{name}", False)]


def _changed(service: Service) -> list[str]:
    """Why a row is highlighted under ?since= (empty without it, or if nothing changed)."""
    reasons = []
    if getattr(service, "since_status", False):
        reasons.append("status changed")
    if getattr(service, "since_failing", False):
        reasons.append("new failures")
    return reasons


def _detector_help() -> dict[str, str]:
    return {
        "stuck": f"Deploying, no progress for over {settings.DASHBOARD_STUCK_MINUTES} min",
        "idle": f"Running, no new calls for over {settings.DASHBOARD_IDLE_MINUTES} min",
        "flapping": (
            f"At least {settings.DASHBOARD_FLAP_CHANGES} status changes within "
            f"{settings.DASHBOARD_FLAP_MINUTES} min"
        ),
    }
