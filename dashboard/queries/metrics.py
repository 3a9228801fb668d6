"""What /metrics exposes, read from the database on every scrape so every web worker answers
the same: each source's freshness, and its services' series as the poll that last wrote them
stored them (see ingest.exposition), so a scrape concatenates text instead of rendering every
service.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery

from dashboard import exposition
from dashboard.exposition import (
    FAMILIES,
    SERIES_COLUMNS,
    Family,
    Renderer,
    current_parts,
    in_parts,
)
from dashboard.models import AlertRule, ExpositionPart, PollRun, Service, Source
from dashboard.queries.sources import visible

# Stored parts read per fetch: each is one family's lines of up to PART_SIZE services
# (~500 kB), so a scrape holds a few of them at a time, whatever the fleet's size.
PARTS_PER_FETCH = 2
# What is_stale() and the source families read: the GROUP BY stays narrow.
SOURCE_FIELDS = (
    "name",
    "interval_seconds",
    "last_poll_at",
    "last_success_at",
    "failures_since_success",
    "last_poll_complete",
)


def source_health() -> QuerySet[Source]:
    """The enabled sources with their failed polls counted, their last poll's duration and
    whether their stored parts are current (see exposition.current_parts())."""
    last_duration = PollRun.objects.filter(source=OuterRef("pk")).order_by("-started_at", "-id")
    return (
        Source.objects.filter(enabled=True)
        .only(*SOURCE_FIELDS)
        .annotate(
            poll_failures=Count("runs", filter=Q(runs__ok=False)),
            last_duration_ms=Subquery(last_duration.values("duration_ms")[:1]),
            parts_current=Exists(current_parts(OuterRef("pk"), OuterRef("name"))),
        )
    )


def has_current_parts(source: Source) -> bool:
    """A scrape reads the source's stored parts; otherwise (never polled, polled before parts
    were stored, renamed since) it renders its services from their rows, as parts would."""
    return bool(getattr(source, "parts_current", False))


def service_exposition(sources: list[Source]) -> Iterator[str]:
    """The per-service families of the sources (source_health()'s) as exposition text.

    All samples of a family must follow its one HELP and TYPE: family by family, the stored
    parts of the sources that have current ones (one query for all of them, so one snapshot:
    never half a poll), then the others' services rendered now.
    """
    current = [source.pk for source in sources if has_current_parts(source)]
    behind = [source.pk for source in sources if not has_current_parts(source)]
    parts = _stored_parts(current) if current else iter(())
    pending = next(parts, None)
    for family in FAMILIES:
        yield family.header()
        while pending is not None and pending[0] == family.name:
            yield pending[1]
            pending = next(parts, None)
        if behind:
            yield from _rendered_now(behind, family)


def _stored_parts(source_ids: list[int]) -> Iterator[tuple[str, str]]:
    # In the unique index's order (family, source, part): read in order, never sorted. The
    # families differ first in a letter, so every collation orders them as FAMILIES does.
    parts = ExpositionPart.objects.filter(
        family__in=[family.name for family in FAMILIES], source_id__in=source_ids
    ).order_by("family", "source_id", "part")
    return parts.values_list("family", "text").iterator(chunk_size=PARTS_PER_FETCH)


def _rendered_now(source_ids: list[int], family: Family) -> Iterator[str]:
    """One family's lines of the sources' visible services, rendered from their rows."""
    services = visible(Service.objects.filter(source_id__in=source_ids))
    rows = services.order_by("source_id", "pk").values_list(*SERIES_COLUMNS)
    renderer = Renderer()
    for part in in_parts(rows.iterator(chunk_size=exposition.PART_SIZE)):
        [text] = renderer.render(part, (family,))
        yield text


def firing_by_rule() -> list[tuple[str, int]]:
    """Each enabled rule and how many of its alerts fire now (silenced ones left out)."""
    firing = Q(alerts__resolved_at=None, alerts__silenced=False)
    rules = AlertRule.objects.filter(enabled=True).annotate(n=Count("alerts", filter=firing))
    return list(rules.order_by("name").values_list("name", "n"))
