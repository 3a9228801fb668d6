"""The per-service families of /metrics as Prometheus text: rendered by the poller after each
successful poll into stored parts (ingest.exposition), so a scrape only concatenates text, and
at scrape time for a source whose parts are not those of its last successful poll
(queries.metrics).

The lines are exactly what prometheus_client's generate_latest writes for the same samples
(labels sorted by name, values as Go prints floats), so a scrape reads the same either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from django.db.models import Exists, OuterRef, Q, QuerySet
from prometheus_client.utils import floatToGoString

from dashboard.models import ExpositionPart, PollRun

# Names are whatever anyone who can create a service typed: a 10,000-character one would make
# every series of that service 10 kB. Cut long values (service_id keeps series apart).
LABEL_MAX = 200
# Services per stored part: a scrape holds about one part of one family at a time (~500 kB),
# and a poll one part of every family.
PART_SIZE = 2000
# What a service's series are made of, in this order (source__name first: the live rendering
# reads several sources at once).
SERIES_COLUMNS = (
    "source__name",
    "service_id",
    "service_name",
    "infer_type",
    "owner",
    "status",
    "invocation_times",
    "failed_times",
    "progress",
    "shared_count",
)


@dataclass(frozen=True)
class Family:
    name: str  # as exposed: a counter's with its _total
    documentation: str
    type: str
    column: int | None  # the value's place in a SERIES_COLUMNS row; None: the status (always 1)

    def header(self) -> str:
        documentation = self.documentation.replace("\\", r"\\").replace("\n", r"\n")
        return f"# HELP {self.name} {documentation}\n# TYPE {self.name} {self.type}\n"


# In name order: the order their parts are stored in (see ExpositionPart) and scraped in.
# Changing what a family writes: add a migration deleting every ExpositionPart, or an idle
# fleet's polls (which render nothing) would keep serving the old text.
FAMILIES: tuple[Family, ...] = (
    Family(
        "modelarts_service_deployment_progress_percent",
        "Deployment progress of the service, 0 to 100.",
        "gauge",
        8,
    ),
    Family(
        "modelarts_service_failures_total",
        "Failed calls of the service, as counted by ModelArts.",
        "counter",
        7,
    ),
    Family(
        "modelarts_service_invocations_total",
        "Calls of the service, as counted by ModelArts.",
        "counter",
        6,
    ),
    Family(
        "modelarts_service_shared_count",
        "How many times the service is shared.",
        "gauge",
        9,
    ),
    Family(
        "modelarts_service_status",
        "The service's current status, as the status label (value always 1). One series per "
        "service, not one per possible status: at 100,000 services that is the difference "
        'between a 50 MB and a 270 MB scrape. Alert on it with {status="failed"}.',
        "gauge",
        None,
    ),
)


def label_value(value: str) -> str:
    """A label value as the API sent it, cut to LABEL_MAX characters.

    Backslashes, quotes and newlines are escaped when written (see escaped()); everything else
    is valid in a label value except a lone surrogate (JSON's "\\ud800"), which cannot be
    written as UTF-8 and would fail the whole scrape.
    """
    if len(value) > LABEL_MAX:
        value = value[: LABEL_MAX - 1] + "…"
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def escaped(value: str) -> str:
    """label_value() escaped for the text format, as prometheus_client escapes it."""
    return label_value(value).replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def sample_value(value: int | float) -> str:
    # Go's float formatting, as generate_latest writes it; the common case without its work.
    if type(value) is int and -(10**15) < value < 10**6:
        return f"{value}.0"
    return floatToGoString(value)


class Renderer:
    """Sample lines of services, family by family. Sources, types, owners and statuses repeat
    across thousands of services: each distinct value is escaped once."""

    def __init__(self) -> None:
        self._shared: dict[str, str] = {}

    def _label(self, value: str) -> str:
        label = self._shared.get(value)
        if label is None:
            label = self._shared[value] = escaped(value)
        return label

    def render(self, rows: Iterable[tuple], families: tuple[Family, ...] = FAMILIES) -> list[str]:
        """The lines of each family (in the order given) for rows of SERIES_COLUMNS."""
        lines: list[list[str]] = [[] for _ in families]
        label = self._label
        for row in rows:
            source, service_id, name, infer_type, owner, status = row[:6]
            # Sorted by label name, as generate_latest writes them.
            labels = (
                f'infer_type="{label(infer_type)}",owner="{label(owner)}",'
                f'service_id="{escaped(service_id)}",service_name="{escaped(name)}",'
                f'source="{label(source)}"'
            )
            for family, out in zip(families, lines, strict=True):
                if family.column is None:
                    out.append(f'{family.name}{{{labels},status="{label(status)}"}} 1.0\n')
                elif (value := row[family.column]) is not None:
                    # The API left it out: no series rather than a made-up 0.
                    out.append(f"{family.name}{{{labels}}} {sample_value(value)}\n")
        return ["".join(out) for out in lines]


def in_parts(rows: Iterable[tuple], size: int | None = None) -> Iterator[list[tuple]]:
    """Rows in lists of at most `size` (PART_SIZE): always at least one list, empty when there
    are no rows, so that a source without services has its (empty) part too."""
    size = size or PART_SIZE
    rows = iter(rows)
    part = list(islice(rows, size))
    yield part
    while part := list(islice(rows, size)):
        yield part


def current_parts(source: object, name: object) -> QuerySet[ExpositionPart]:
    """A source's first stored part while its parts are current: rendered under the source's
    name, and no successful poll since wrote a service row (every such poll renders them
    anew, so one that did not was made some other way). `source` and `name` are the source's
    pk and name, or OuterRef()s to them in a query of sources."""
    later = PollRun.objects.filter(
        Q(created_count__gt=0) | Q(updated_count__gt=0) | Q(gone_count__gt=0),
        ok=True,
        source_id=OuterRef("source_id"),
        started_at__gt=OuterRef("rendered_at"),
    )
    first = ExpositionPart.objects.filter(
        source_id=source, source_name=name, family=FAMILIES[0].name, part=0
    )
    return first.exclude(Exists(later))
