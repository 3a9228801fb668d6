"""After a successful poll: render the source's services as /metrics lines and store them, so
that a scrape concatenates stored text instead of rendering 100,000 services every time."""

from __future__ import annotations

from dashboard import exposition
from dashboard.exposition import FAMILIES, SERIES_COLUMNS, Renderer, current_parts, in_parts
from dashboard.ingest.sql import insert_rows
from dashboard.models import ExpositionPart, PollRun, Service, Source


def render_exposition(source: Source, run: PollRun) -> None:
    """Replace the source's stored parts with its services as this poll left them.

    Called inside the poll's write transaction, after the snapshot is written and before the
    source's last_success_at moves: a scrape sees the previous poll's parts or this one's,
    never a mix, and a failed poll (rolled back, or never here) leaves the last good
    snapshot's. Memory stays at one part of every family, whatever the fleet's size.
    """
    if _unchanged(source, run):
        return  # rendering 100,000 services (and rewriting 100 MB) would give the same text
    ExpositionPart.objects.filter(source=source).delete()
    services = (
        Service.objects.filter(source=source, gone_at=None)
        .order_by("pk")
        .values_list(*SERIES_COLUMNS)
        .iterator(chunk_size=exposition.PART_SIZE)
    )
    renderer = Renderer()
    columns = ("source_id", "family", "part", "rendered_at", "source_name", "text")
    for number, rows in enumerate(in_parts(services)):
        # Plain rows (COPY on PostgreSQL): an INSERT carries its 2 MB texts as SQL literals,
        # which PostgreSQL's parser took 6 s to read at 100,000 services.
        insert_rows(
            ExpositionPart,
            columns,
            [
                (source.pk, family.name, number, run.started_at, source.name, text)
                for family, text in zip(FAMILIES, renderer.render(rows), strict=True)
            ],
        )


def _unchanged(source: Source, run: PollRun) -> bool:
    """The poll wrote no service row and the stored parts are current (see current_parts()):
    an idle fleet's poll writes nothing here either. Service rows change only in polls (the
    admin shows them read-only); a release that changes the families deletes the stored parts
    in a migration."""
    if run.created_count or run.updated_count or run.gone_count:
        return False
    return current_parts(source.pk, source.name).exists()
