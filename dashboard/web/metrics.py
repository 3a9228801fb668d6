"""Prometheus metrics, read from the database on every scrape so every web worker answers the
same: each service's status and counters, each source's freshness."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from dashboard.queries.metrics import firing_by_rule, service_series, source_health

SERVICE_LABELS = ("source", "service_id", "service_name", "infer_type", "owner")
# Names are whatever anyone who can create a service typed: a 10,000-character one would make
# every series of that service 10 kB. Cut long values (service_id keeps series apart).
LABEL_MAX = 200

# A row of the service query, trimmed to what the families need:
# (label values, status, invocation_times, failed_times, progress, shared_count)
ServiceRow = tuple[tuple[str, ...], str, int | None, int | None, int | None, int | None]


def label_value(value: str) -> str:
    """A label value as the API sent it, cut to LABEL_MAX characters.

    prometheus_client escapes backslashes, quotes and newlines; everything else is valid in a
    label value except a lone surrogate (JSON's "\\ud800"), which cannot be written as UTF-8 and
    would fail the whole scrape.
    """
    if len(value) > LABEL_MAX:
        value = value[: LABEL_MAX - 1] + "…"
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


class _LazyFamily(Metric):
    """A metric family whose samples are made while the exposition is written, one at a time.

    add_metric keeps every Sample (and its label dict) until the scrape ends: at 100,000
    services that is well over a million objects for the status family alone.
    """

    def __init__(self, name: str, documentation: str, typ: str, samples: Iterable[Sample]):
        super().__init__(name, documentation, typ)
        self.samples = samples  # type: ignore[assignment]  # iterated once, by generate_latest


class ModelArtsCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from _source_families(timezone.now())
        yield from _service_families(service_series())
        yield _alert_family()


def _alert_family() -> Metric:
    family = GaugeMetricFamily(
        "modelarts_alerts_firing",
        "Alerts of the rule firing now (silenced ones left out), per enabled rule.",
        labels=["rule"],
    )
    for rule, firing in firing_by_rule():
        family.add_metric([label_value(rule)], firing)
    return family


def _source_families(now: datetime) -> Iterator[Metric]:
    sources = source_health()
    families = {
        "success": GaugeMetricFamily(
            "modelarts_source_last_success_timestamp_seconds",
            "When the last successful poll of the source started (absent: never).",
            labels=["source"],
        ),
        "poll": GaugeMetricFamily(
            "modelarts_source_last_poll_timestamp_seconds",
            "When the last poll of the source started, successful or not (absent: never).",
            labels=["source"],
        ),
        "duration": GaugeMetricFamily(
            "modelarts_source_last_poll_duration_seconds",
            "How long the source's last finished poll took.",
            labels=["source"],
        ),
        "consecutive": GaugeMetricFamily(
            "modelarts_source_consecutive_failures",
            "Failed polls of the source since its last successful one.",
            labels=["source"],
        ),
        "failures": CounterMetricFamily(
            "modelarts_source_poll_failures",
            "Failed polls of the source recorded in the database.",
            labels=["source"],
        ),
        "complete": GaugeMetricFamily(
            "modelarts_source_last_poll_complete",
            "1 when the last successful poll read the whole service list, else 0.",
            labels=["source"],
        ),
        "up": GaugeMetricFamily(
            "modelarts_source_up",
            "1 when the source's data is fresh (a successful poll within twice its interval), "
            "else 0.",
            labels=["source"],
        ),
    }
    for source in sources:
        labels = [label_value(source.name)]
        if source.last_success_at is not None:
            families["success"].add_metric(labels, source.last_success_at.timestamp())
        if source.last_poll_at is not None:
            families["poll"].add_metric(labels, source.last_poll_at.timestamp())
        if source.last_duration_ms is not None:
            families["duration"].add_metric(labels, source.last_duration_ms / 1000)
        families["consecutive"].add_metric(labels, source.failures_since_success)
        families["failures"].add_metric(labels, source.poll_failures)
        families["complete"].add_metric(labels, int(source.last_poll_complete))
        families["up"].add_metric(labels, int(not source.is_stale(now)))
    yield from families.values()


def _compact(rows: Iterable[tuple]) -> list[ServiceRow]:
    """The query's rows with their label values cut, kept for every family to read, so all of
    them describe the same moment."""
    # Sources, types, owners and statuses repeat across thousands of rows: keep one copy each.
    seen: dict[str, str] = {}

    def shared(value: str) -> str:
        label = seen.get(value)
        if label is None:
            label = seen[value] = label_value(value)
        return label

    kept = []
    for source, service_id, name, infer_type, owner, status, *numbers in rows:
        labels = (shared(source), label_value(service_id), label_value(name))
        kept.append(((*labels, shared(infer_type), shared(owner)), shared(status), *numbers))
    return kept


def _service_families(query_rows: Iterable[tuple]) -> Iterator[Metric]:
    rows = _compact(query_rows)
    yield _LazyFamily(
        "modelarts_service_status",
        "The service's current status, as the status label (value always 1). One series per "
        "service, not one per possible status: at 100,000 services that is the difference "
        'between a 50 MB and a 270 MB scrape. Alert on it with {status="failed"}.',
        "gauge",
        _status_samples(rows),
    )
    for name, documentation, typ, column in (
        (
            "modelarts_service_invocations",
            "Calls of the service, as counted by ModelArts.",
            "counter",
            2,
        ),
        (
            "modelarts_service_failures",
            "Failed calls of the service, as counted by ModelArts.",
            "counter",
            3,
        ),
        (
            "modelarts_service_deployment_progress_percent",
            "Deployment progress of the service, 0 to 100.",
            "gauge",
            4,
        ),
        (
            "modelarts_service_shared_count",
            "How many times the service is shared.",
            "gauge",
            5,
        ),
    ):
        sample_name = f"{name}_total" if typ == "counter" else name
        yield _LazyFamily(name, documentation, typ, _column_samples(sample_name, rows, column))


def _status_samples(rows: list[ServiceRow]) -> Iterator[Sample]:
    name = "modelarts_service_status"
    for labels, status, *_ in rows:
        yield Sample(name, {**dict(zip(SERVICE_LABELS, labels, strict=True)), "status": status}, 1)


def _column_samples(name: str, rows: list[ServiceRow], column: int) -> Iterator[Sample]:
    for row in rows:
        value = row[column]
        if value is not None:  # the API left it out: no series rather than a made-up 0
            yield Sample(name, dict(zip(SERVICE_LABELS, row[0], strict=True)), value)


# Its own registry: the global one would add this process's own metrics, which differ by worker.
registry = CollectorRegistry()
registry.register(ModelArtsCollector())


@require_GET
@login_not_required
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus text exposition; who may read it is up to DASHBOARD_METRICS_TOKEN and
    DASHBOARD_METRICS_ACCESS, not the login middleware (a scraper cannot sign in)."""
    token = getattr(settings, "DASHBOARD_METRICS_TOKEN", "") or ""
    if not _may_read(request, token, getattr(settings, "DASHBOARD_METRICS_ACCESS", "public")):
        response = HttpResponse(
            "Unauthorized\n", status=401, content_type="text/plain; charset=utf-8"
        )
        if token:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _may_read(request: HttpRequest, token: str, access: str) -> bool:
    if token and _bearer_matches(request, token):
        return True
    if access == "public":
        return not token  # a configured token is required, even of signed-in users
    # "login", or anything else: fail closed
    return request.user.is_authenticated


def _bearer_matches(request: HttpRequest, token: str) -> bool:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Bytes: compare_digest refuses str with non-ASCII characters, which anyone can send.
    return hmac.compare_digest(credentials.strip().encode(), token.encode())
