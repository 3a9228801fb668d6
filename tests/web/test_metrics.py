from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import TOKEN_ENV
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import path
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from dashboard.exposition import LABEL_MAX, Renderer, label_value
from dashboard.ingest import poll as polling
from dashboard.models import PollRun, Service, Source
from dashboard.web.metrics import metrics

METRICS_TOKEN = "t0k3n-metrics-8d1f3a"
HOSTILE = 'a"b\\c\nd{}<script>alert(1)</script>'
BIDI = "\u202eevil\u202c\u200b\u200d\u2066name\u2069 😀 e\u0301"


# The lead wires /metrics into dashboard/urls.py; until then this module is its own URLconf for
# the one test that goes through every middleware.
urlpatterns = [path("metrics", metrics)]


def scrape(user=None, **headers) -> HttpResponse:
    request = RequestFactory().get("/metrics", headers=headers)
    request.user = user or AnonymousUser()
    return metrics(request)


def body(response) -> str:
    """The whole exposition (a scrape streams it; a refusal is a plain response)."""
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode("utf-8")


def series(user=None, **headers) -> list[Sample]:
    response = scrape(user, **headers)
    assert response.status_code == 200
    text = body(response)
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [
        sample.value
        for sample in samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def named(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [s for s in samples if s.name == name and labels.items() <= s.labels.items()]


def test_it_serves_the_prometheus_text_format(db):
    response = scrape()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")


def test_it_exports_a_services_current_status_as_one_labelled_series(make_service):
    service = make_service("alpha", "failed")
    samples = series()
    [status] = named(samples, "modelarts_service_status", service_id=service.service_id)
    assert status.value == 1
    assert status.labels == {
        "source": "fixture",
        "service_id": service.service_id,
        "service_name": "alpha",
        "infer_type": "real-time",
        "owner": "owner-a",
        "status": "failed",
    }


def test_it_gives_an_unknown_status_its_own_series(make_service):
    service = make_service("beta", "Hibernating")
    statuses = named(series(), "modelarts_service_status", service_id=service.service_id)
    assert {s.labels["status"]: s.value for s in statuses} == {"Hibernating": 1}


def test_it_exports_counters_progress_and_shared_count(make_service):
    service = make_service(
        "gamma",
        "deploying",
        invocation_times=12_345,
        failed_times=67,
        progress=40,
        shared_count=3,
        infer_type="batch",
        owner="team-b",
    )
    samples = series()
    labels = {
        "source": "fixture",
        "service_id": service.service_id,
        "service_name": "gamma",
        "infer_type": "batch",
        "owner": "team-b",
    }
    assert value(samples, "modelarts_service_invocations_total", **labels) == 12_345
    assert value(samples, "modelarts_service_failures_total", **labels) == 67
    assert value(samples, "modelarts_service_deployment_progress_percent", **labels) == 40
    assert value(samples, "modelarts_service_shared_count", **labels) == 3


def test_it_leaves_out_what_the_api_did_not_send(make_service):
    service = make_service("delta", invocation_times=None, failed_times=None, progress=None)
    samples = series()
    for name in (
        "modelarts_service_invocations_total",
        "modelarts_service_failures_total",
        "modelarts_service_deployment_progress_percent",
        "modelarts_service_shared_count",
    ):
        assert named(samples, name, service_id=service.service_id) == []
    assert len(named(samples, "modelarts_service_status", service_id=service.service_id)) == 1


def test_it_leaves_out_gone_services_and_disabled_sources(make_service):
    shown = make_service("shown")
    gone = make_service("gone", gone_at=timezone.now())
    off = Source.objects.create(
        name="off", endpoint="http://127.0.0.1:9", project_id="p", enabled=False
    )
    hidden = make_service("hidden", source=off)
    samples = series()
    ids = {s.labels.get("service_id") for s in samples}
    assert shown.service_id in ids
    assert gone.service_id not in ids
    assert hidden.service_id not in ids
    assert named(samples, "modelarts_source_up", source="off") == []


def test_it_exports_a_polled_sources_freshness(polled, source):
    samples = series()
    assert value(
        samples, "modelarts_source_last_success_timestamp_seconds", source="sim"
    ) == pytest.approx(source.last_success_at.timestamp())
    assert value(
        samples, "modelarts_source_last_poll_timestamp_seconds", source="sim"
    ) == pytest.approx(source.last_poll_at.timestamp())
    assert value(
        samples, "modelarts_source_last_poll_duration_seconds", source="sim"
    ) == pytest.approx(polled.duration_ms / 1000)
    assert value(samples, "modelarts_source_consecutive_failures", source="sim") == 0
    assert value(samples, "modelarts_source_poll_failures_total", source="sim") == 0
    assert value(samples, "modelarts_source_last_poll_complete", source="sim") == 1
    assert value(samples, "modelarts_source_up", source="sim") == 1
    assert len(named(samples, "modelarts_service_status", source="sim")) == polled.fetched_count
    running = named(samples, "modelarts_service_status", source="sim", status="running")
    assert len(running) == Service.objects.filter(status="running").count()


def test_it_counts_failed_polls(polled, source, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "a-revoked-token")
    polling.poll_source(source)
    failed = polling.poll_source(source)
    source.refresh_from_db()
    samples = series()
    assert not failed.ok
    assert value(samples, "modelarts_source_consecutive_failures", source="sim") == 2
    assert value(samples, "modelarts_source_poll_failures_total", source="sim") == 2
    assert value(
        samples, "modelarts_source_last_success_timestamp_seconds", source="sim"
    ) == pytest.approx(polled.started_at.timestamp())
    assert value(
        samples, "modelarts_source_last_poll_timestamp_seconds", source="sim"
    ) == pytest.approx(failed.started_at.timestamp())
    assert value(
        samples, "modelarts_source_last_poll_duration_seconds", source="sim"
    ) == pytest.approx(failed.duration_ms / 1000)


def test_it_reports_a_stale_source_as_down(polled, source):
    long_ago = timezone.now() - timedelta(seconds=10 * source.interval_seconds)
    Source.objects.filter(pk=source.pk).update(last_success_at=long_ago)
    assert value(series(), "modelarts_source_up", source="sim") == 0


def test_it_reports_a_never_polled_source_as_down_without_timestamps(source):
    samples = series()
    assert value(samples, "modelarts_source_up", source="sim") == 0
    assert value(samples, "modelarts_source_consecutive_failures", source="sim") == 0
    for name in (
        "modelarts_source_last_success_timestamp_seconds",
        "modelarts_source_last_poll_timestamp_seconds",
        "modelarts_source_last_poll_duration_seconds",
    ):
        assert named(samples, name, source="sim") == []


def test_it_reads_a_constant_number_of_queries(make_service, django_assert_max_num_queries):
    make_service("first")
    # Sources, then services never polled (rendered now: one query per family), alerts per rule.
    with django_assert_max_num_queries(7):
        small = body(scrape())
    for n in range(30):
        make_service(f"service-{n}", "Unheard-Of" if n % 3 else "running")
    Source.objects.create(name="second", endpoint="http://127.0.0.1:9", project_id="p")
    PollRun.objects.create(source=Source.objects.get(name="second"), started_at=timezone.now())
    with django_assert_max_num_queries(7):
        large = body(scrape())
    assert len(large) > 5 * len(small)


def test_it_keeps_hostile_label_values_exactly(make_service):
    hostile = make_service(HOSTILE, HOSTILE[:32], owner=BIDI, infer_type="<img src=x>")
    samples = series()
    statuses = named(samples, "modelarts_service_status", service_id=hostile.service_id)
    assert {s.labels["service_name"] for s in statuses} == {HOSTILE}
    assert {s.labels["owner"] for s in statuses} == {BIDI}
    assert {s.labels["infer_type"] for s in statuses} == {"<img src=x>"}
    assert value(samples, "modelarts_service_status", status=HOSTILE[:32]) == 1


def test_it_cuts_long_label_values(make_service):
    # As long as the column holds (the poller cuts there); the 10,000-character case is below.
    name = "n" * Service._meta.get_field("service_name").max_length
    service = make_service(name)
    samples = named(series(), "modelarts_service_status", service_id=service.service_id)
    assert {s.labels["service_name"] for s in samples} == {"n" * (LABEL_MAX - 1) + "…"}


def test_it_cuts_a_10000_character_name_to_a_parseable_label():
    # No column holds 10,000 characters: the rows are given as the service query returns them.
    rows = [("sim", "id-1", "x" * 10_000 + BIDI, "real-time", "o", "running", 5, 1, None, 0)]
    text = "".join(Renderer().render(rows))
    names = {
        sample.labels["service_name"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert names == {"x" * (LABEL_MAX - 1) + "…"}
    assert len(text) < 20 * 1000


def test_it_replaces_a_lone_surrogate_rather_than_failing_the_scrape():
    assert label_value("a\ud800b") == "a?b"
    assert label_value(BIDI) == BIDI
    assert label_value(HOSTILE) == HOSTILE


def test_it_is_public_by_default(db):
    assert scrape().status_code == 200


@pytest.mark.urls(__name__)
def test_it_gets_past_the_login_middleware_and_decides_itself(anonymous_client, db, settings):
    assert anonymous_client.get("/metrics").status_code == 200
    settings.DASHBOARD_METRICS_ACCESS = "login"
    assert anonymous_client.get("/metrics").status_code == 401  # not a redirect to /login/


def test_it_can_require_a_bearer_token(db, settings, operator):
    settings.DASHBOARD_METRICS_TOKEN = METRICS_TOKEN
    assert scrape().status_code == 401
    assert scrape()["WWW-Authenticate"].startswith("Bearer")
    assert scrape(authorization="Bearer wrong").status_code == 401
    assert scrape(authorization=f"Basic {METRICS_TOKEN}").status_code == 401
    assert scrape(authorization=f"Bearer {METRICS_TOKEN}x").status_code == 401
    assert scrape(authorization="Bearer tök3n").status_code == 401  # non-ASCII: no 500
    assert scrape(operator).status_code == 401  # public + token: the token is the way in
    assert scrape(authorization=f"Bearer {METRICS_TOKEN}").status_code == 200
    assert scrape(authorization=f"bearer {METRICS_TOKEN}").status_code == 200


def test_it_can_require_a_login(db, settings, operator):
    settings.DASHBOARD_METRICS_ACCESS = "login"
    response = scrape()
    assert response.status_code == 401
    assert "WWW-Authenticate" not in response  # no token is configured, so none is asked for
    assert scrape(operator).status_code == 200


def test_it_takes_a_login_or_the_token_when_both_are_configured(db, settings, operator):
    settings.DASHBOARD_METRICS_ACCESS = "login"
    settings.DASHBOARD_METRICS_TOKEN = METRICS_TOKEN
    assert scrape().status_code == 401
    assert scrape(operator).status_code == 200
    assert scrape(authorization=f"Bearer {METRICS_TOKEN}").status_code == 200


def test_it_fails_closed_on_an_unknown_access_setting(db, settings):
    settings.DASHBOARD_METRICS_ACCESS = "nobody"
    assert scrape().status_code == 401


def test_it_answers_get_only(db):
    request = RequestFactory().post("/metrics")
    request.user = AnonymousUser()
    assert metrics(request).status_code == 405


def test_it_never_shows_the_token(make_service, settings):
    settings.DASHBOARD_METRICS_TOKEN = METRICS_TOKEN
    make_service("epsilon")
    response = scrape(authorization=f"Bearer {METRICS_TOKEN}")
    assert METRICS_TOKEN not in body(response)
    assert METRICS_TOKEN not in body(scrape())


def test_it_is_served_at_metrics_for_prometheus(anonymous_client, make_service):
    make_service("alpha", "failed")
    response = anonymous_client.get("/metrics")
    assert response.status_code == 200
    families = {f.name for f in text_string_to_metric_families(body(response))}
    assert "modelarts_service_status" in families


def test_it_counts_firing_alerts_per_rule_leaving_silenced_ones_out(make_service):
    from dashboard.models import Alert, AlertRule

    service = make_service("first", "failed")
    failing = AlertRule.objects.create(name="failing", condition="statuses", statuses=["failed"])
    AlertRule.objects.create(name="quiet", condition="stale")
    for n, silenced in enumerate((False, False, True)):
        Alert.objects.create(
            rule=failing,
            source=service.source,
            service=service,
            fingerprint=f"f{n}",
            started_at=timezone.now(),
            silenced=silenced,
        )
    text = body(scrape())
    assert 'modelarts_alerts_firing{rule="failing"} 2.0' in text
    assert 'modelarts_alerts_firing{rule="quiet"} 0.0' in text
