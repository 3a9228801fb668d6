"""Each service's detail, fetched by the poller from the simulator over real HTTP."""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone
from local_http import LocalHTTPServer, QuietHandler

from dashboard.ingest.details import CALLS_PER_SERVICE, fetch_details
from dashboard.ingest.scheduler import run_due_polls
from dashboard.models import Service, ServiceDetail, Source


def detail_calls(simulator) -> list[str]:
    return [r.path for r in simulator.requests if "/services/" in r.path.split("?")[0]]


def test_it_explains_the_unhealthy_services_after_a_poll(polled, source, simulator):
    fetched = fetch_details(source, budget=1000)
    unhealthy = Service.objects.filter(status__in=["failed", "concerning"])
    assert fetched.services >= unhealthy.count() > 0 and fetched.failed == 0
    for service in unhealthy.filter(status="failed"):
        detail = service.detail
        assert detail.error_msg, service.service_name
        assert detail.fetched_at is not None and not detail.not_found
        assert any(event["type"] == "abnormal" for event in detail.events)
        assert detail.model_configs[0]["model_name"]
    concerning = [s.detail for s in unhealthy.filter(status="concerning")]
    assert concerning and all(detail.below_desired for detail in concerning)
    # Healthy services cost nothing: nobody asked about them.
    assert not ServiceDetail.objects.filter(
        service__status="running", service__detail__isnull=False
    )
    assert len(detail_calls(simulator)) == CALLS_PER_SERVICE * fetched.services


def test_it_never_stores_environment_values(polled, source):
    fetch_details(source, budget=1000)
    stored = json.dumps(list(ServiceDetail.objects.values("model_configs", "events")))
    assert "sim-secret-" not in stored
    assert any(d.model_configs[0]["env_names"] for d in ServiceDetail.objects.all())


def test_it_keeps_to_the_budget_and_spreads_the_rest_over_later_polls(polled, source, simulator):
    unhealthy = Service.objects.filter(status__in=["failed", "concerning"]).count()
    assert unhealthy >= 4
    first = fetch_details(source, budget=2 * CALLS_PER_SERVICE + 2)
    second = fetch_details(source, budget=2 * CALLS_PER_SERVICE + 2)
    assert first.calls == second.calls == 2 * CALLS_PER_SERVICE
    assert len(detail_calls(simulator)) == 4 * CALLS_PER_SERVICE
    # The second round took the next two, not the same ones again.
    assert ServiceDetail.objects.filter(fetched_at__isnull=False).count() == 4


def test_a_fresh_detail_is_not_fetched_again_until_it_ages(polled, source, simulator, settings):
    fetch_details(source, budget=1000)
    calls = len(detail_calls(simulator))
    assert fetch_details(source, budget=1000).services == 0
    ServiceDetail.objects.update(attempted_at=timezone.now() - timedelta(minutes=5))
    assert fetch_details(source, budget=1000).services > 0
    assert len(detail_calls(simulator)) > calls


def test_a_page_request_is_fetched_between_polls_with_the_update_logs(polled, source):
    running = Service.objects.filter(status="running").first()
    assert ServiceDetail.request(running)
    assert not ServiceDetail.request(running)  # once is enough
    run_due_polls(print)  # no poll is due: only the page's request
    detail = ServiceDetail.objects.get(service=running)
    assert detail.requested_at is None and detail.fetched_at is not None
    assert detail.update_logs and detail.update_logs[0]["result"] in ("SUCCESS", "FAIL", "RUNNING")


def test_a_service_modelarts_no_longer_knows_says_so(polled, source):
    ghost = Service.objects.first()
    ghost.pk = None
    ghost.service_id = "00000000-0000-4000-8000-00000000dead"
    ghost.save()
    ServiceDetail.request(ghost)
    fetch_details(source, asked_only=True)
    detail = ServiceDetail.objects.get(service=ghost)
    assert detail.not_found and detail.error_code == "ModelArts.3502"
    assert detail.fetched_at is None


def test_an_api_error_is_kept_with_its_code_beside_the_last_good_detail(polled, source, simulator):
    failed = Service.objects.filter(status="failed").first()
    ServiceDetail.request(failed)
    fetch_details(source, asked_only=True)
    good = ServiceDetail.objects.get(service=failed)
    ServiceDetail.request(failed)
    simulator.inject("500", times=10, api="any")
    fetch_details(source, asked_only=True)
    detail = ServiceDetail.objects.get(service=failed)
    assert detail.error_code.startswith("ModelArts.") and detail.error_message
    assert (detail.error_msg, detail.fetched_at) == (good.error_msg, good.fetched_at)


def test_the_budget_holds_at_ten_thousand_unhealthy_services(db, make_service):
    """Every service failed, and an API that answers each detail call: a poll's round still
    makes at most the budget's calls, and the next round takes the next services."""
    seen: list[str] = []

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = b'{"error_code": "ModelArts.3505", "error_msg": "busy"}'
            self.send_response(500)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with LocalHTTPServer(Handler) as api:
        source = Source.objects.create(
            name="big", endpoint=api.url, project_id="p" * 32, auth_kind="none"
        )
        template = make_service("template", "failed", source=source)
        Service.objects.bulk_create(
            Service(
                **{
                    **{f.attname: getattr(template, f.attname) for f in Service._meta.fields},
                    "id": None,
                    "service_id": f"svc-{n:05d}",
                }
            )
            for n in range(9999)
        )
        assert Service.objects.filter(source=source, status="failed").count() == 10_000
        first = fetch_details(source, budget=50)
        assert len(seen) <= 50 and first.calls <= 50
        tried = set(ServiceDetail.objects.values_list("service_id", flat=True))
        fetch_details(source, budget=50)
        assert len(seen) <= 100
        assert len(set(ServiceDetail.objects.values_list("service_id", flat=True))) == 2 * len(
            tried
        )
