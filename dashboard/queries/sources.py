"""Which sources and services every page shows: one rule for disabled sources."""

from __future__ import annotations

from django.db.models import QuerySet

from dashboard.models import Service, Source


def all_sources() -> list[Source]:
    """Every source, enabled or not, read once per request (see visible())."""
    return list(Source.objects.all())


def enabled(sources: list[Source]) -> list[Source]:
    return [source for source in sources if source.enabled]


def disabled_ids(sources: list[Source]) -> list[int]:
    """The sources whose services every view leaves out."""
    return [source.pk for source in sources if not source.enabled]


def visible(services: QuerySet[Service], sources: list[Source] | None = None) -> QuerySet[Service]:
    """The services a page may show: not gone, and not of a disabled source.

    `sources` are every source, when the caller has read them: the disabled ones' services are
    then left out by id rather than by a join on source.enabled, and by exclusion, so that
    SQLite answers counts from the status index and sorts from the sort indexes (with
    `source_id IN (…)` it would pick the source_id index, and read every row). Without them,
    a subquery names the disabled sources (for whole-fleet reads, which use no such index).
    """
    services = services.filter(gone_at=None)
    if sources is None:
        return services.exclude(source__in=Source.objects.filter(enabled=False))
    disabled = disabled_ids(sources)
    return services.exclude(source_id__in=disabled) if disabled else services
