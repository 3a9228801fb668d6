"""The service table's body, its rows rendered from the column specification."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape

from django.utils.safestring import SafeString, mark_safe

from dashboard.models import Service, ServiceDetail
from dashboard.web.columns import Column, Row, changed_reasons, detector_help
from dashboard.web.format import iso


def rows_html(
    services: Iterable[Service],
    columns: list[Column],
    *,
    source_names: dict[int, str],
    since: datetime | None,
    now: datetime,
    alerting: set[int] = frozenset(),
    details: dict[int, ServiceDetail] | None = None,
) -> SafeString:
    """The table body's rows: a cell per column (see table_columns); with since, changed rows
    highlighted;
    a bell on the services with an alert firing."""
    cells = [column.cell for column in columns]
    help_texts = detector_help()
    since_text = iso(since)
    html = []
    for service in services:
        row = Row(
            source_names.get(service.source_id, ""),
            since_text,
            now,
            help_texts,
            alerting=service.pk in alerting,
            detail=(details or {}).get(service.pk),
        )
        highlight = ' class="changed"' if changed_reasons(service) else ""
        html.append(f'<tr data-service-id="{escape(service.service_id)}"{highlight}>')
        html.extend(cell(service, row) for cell in cells)
        html.append("</tr>\n")
    return mark_safe("".join(html))
