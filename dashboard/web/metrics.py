"""Prometheus metrics, read from the database on every scrape so every web worker answers the
same: each source's freshness and the alerts firing, rendered now, and each service's status
and counters as its source's last poll stored them (see ingest.exposition), streamed."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dashboard.exposition import label_value
from dashboard.models import Source
from dashboard.queries.metrics import firing_by_rule, service_exposition, source_health


class _Families(Collector):
    """A few families made now, for generate_latest to write."""

    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def _exposition(sources: list[Source]) -> Iterator[bytes]:
    yield generate_latest(_Families(list(_source_families(sources, timezone.now()))))
    for text in service_exposition(sources):
        yield text.encode("utf-8")
    yield generate_latest(_Families([_alert_family()]))


def _alert_family() -> Metric:
    family = GaugeMetricFamily(
        "modelarts_alerts_firing",
        "Alerts of the rule firing now (silenced ones left out), per enabled rule.",
        labels=["rule"],
    )
    for rule, firing in firing_by_rule():
        family.add_metric([label_value(rule)], firing)
    return family


def _source_families(sources: list[Source], now: datetime) -> Iterator[Metric]:
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


@require_GET
@login_not_required
def metrics(request: HttpRequest) -> HttpResponseBase:
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
    # Read before the response starts: a database that cannot answer is a 500, not a cut scrape.
    sources = list(source_health())
    return StreamingHttpResponse(_exposition(sources), content_type=CONTENT_TYPE_LATEST)


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
