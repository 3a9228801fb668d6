"""The per-service calls of ModelArtsClient over real HTTP: against a tiny server replaying the
documented bodies, and against the simulator (its faults, 404s, auth and envs)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import quote

import pytest
from conftest import EXAMPLES, PROJECT_ID, TOKEN
from local_http import LocalHTTPServer, QuietHandler

from dashboard.devtools.simulator import Fleet, ManualClock, SimulatorServer
from dashboard.devtools.simulator.detail import SECRET_PREFIX
from dashboard.devtools.simulator.fleet import GONE
from dashboard.modelarts import (
    APIError,
    AuthError,
    DeadlineError,
    EventPage,
    InvalidQueryError,
    ModelArtsClient,
    Monitor,
    ResponseError,
    RetryPolicy,
    ServiceDetail,
    ServiceNotFound,
    TokenAuth,
    TransportError,
    UpdateLogs,
)

SHOW_ID = "f76f20ba-78f5-44e8-893a-37c8c600c02f"  # show_service_example_v1_otc.json
EVENTS_ID = "35de3ca9-1bca-4ae7-9cb0-914f30fa7d3e"  # service_events_example_v1_otc.json
MNIST_ID = "195c1f2d-136d-40af-a0f3-db5717d2634a"  # the monitor and update-log examples
CALLS = ("get_service", "list_events", "get_monitor", "list_update_logs")


def example(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


DOCUMENTED = {
    "": example("show_service_example_v1_otc.json"),
    "events": example("service_events_example_v1_otc.json"),
    "monitor": example("service_monitor_example_v1_otc.json"),
    "logs": example("service_update_logs_example_v1_otc.json"),
}


class DocumentedAPI(LocalHTTPServer):
    """Answers each per-service path with its documented example, or with what `answer` says."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.answer: tuple[int, bytes] | None = None
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def _reply(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        with self._lock:
            self.requests.append((path, headers))
        if self.answer is not None:
            return self.answer
        prefix = f"/v1/{PROJECT_ID}/services/"
        parts = path.split("?")[0].removeprefix(prefix).split("/")
        return 200, DOCUMENTED[parts[1] if len(parts) > 1 else ""]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                status, body = api._reply(self.path, dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture
def documented() -> Iterator[DocumentedAPI]:
    with DocumentedAPI() as server:
        yield server


def client_for(url: str, token: str = TOKEN, **options: object) -> ModelArtsClient:
    options.setdefault("retry", RetryPolicy(attempts=1))
    return ModelArtsClient(url, PROJECT_ID, TokenAuth(token), **options)


def retrying_client(url: str, attempts: int = 3) -> ModelArtsClient:
    return client_for(url, retry=RetryPolicy(attempts=attempts, backoff=0, max_backoff=0))


def service_in(fleet: Fleet, status: str) -> str:
    return next(item["service_id"] for item in fleet.items() if item["status"] == status)


def secrets_of(simulator: SimulatorServer, service_id: str) -> list[str]:
    envs = simulator.details.envs(service_id)
    return [value for value in envs.values() if value.startswith(SECRET_PREFIX)]


# --- the documented bodies, over HTTP ---------------------------------------------------------


def test_it_gets_the_documented_service_detail(documented: DocumentedAPI) -> None:
    detail = client_for(documented.url).get_service(SHOW_ID)

    assert isinstance(detail, ServiceDetail)
    assert (detail.service_id, detail.service_name, detail.status) == (
        SHOW_ID,
        "service-demo",
        "running",
    )
    assert detail.config[0].model_name == "jar-model"
    path, headers = documented.requests[0]
    assert path == f"/v1/{PROJECT_ID}/services/{SHOW_ID}"
    assert headers["X-Auth-Token"] == TOKEN


def test_it_lists_the_documented_events(documented: DocumentedAPI) -> None:
    page = client_for(documented.url).list_events(EVENTS_ID)

    assert isinstance(page, EventPage)
    assert (page.total_count, len(page.events)) == (9, 9)
    assert page.events[0].event_info == "start to deploy service"
    assert documented.requests[0][0] == (
        f"/v1/{PROJECT_ID}/services/{EVENTS_ID}/events?limit=1000&offset=0"
    )


def test_it_sends_the_events_filters_in_signing_order(documented: DocumentedAPI) -> None:
    client_for(documented.url).list_events(
        EVENTS_ID,
        event_type="abnormal",
        start_time=datetime(2026, 1, 1, tzinfo=UTC),
        offset=2,
        limit=50,
        order="asc",
    )

    assert documented.requests[0][0] == (
        f"/v1/{PROJECT_ID}/services/{EVENTS_ID}/events"
        "?event_type=abnormal&limit=50&offset=2&order=asc&start_time=1767225600000"
    )


def test_it_gets_the_documented_monitor(documented: DocumentedAPI) -> None:
    monitor = client_for(documented.url).get_monitor(MNIST_ID)

    assert isinstance(monitor, Monitor)
    assert monitor.models[0].cpu_core_usage == 2.4
    assert documented.requests[0][0] == f"/v1/{PROJECT_ID}/services/{MNIST_ID}/monitor"


def test_it_lists_the_documented_update_logs(documented: DocumentedAPI) -> None:
    logs = client_for(documented.url).list_update_logs(MNIST_ID)

    assert isinstance(logs, UpdateLogs)
    assert [log.result for log in logs.logs] == ["SUCCESS"]
    assert logs.logs[0].config[0].specification == "modelarts.vm.cpu.2u"
    assert documented.requests[0][0] == f"/v1/{PROJECT_ID}/services/{MNIST_ID}/logs"


def test_it_escapes_the_service_id_as_one_path_segment(documented: DocumentedAPI) -> None:
    service_id = "a/b ?#%.~é"
    documented.answer = (200, json.dumps({"service_id": service_id}).encode())

    detail = client_for(documented.url).get_monitor(service_id)

    assert detail.service_id == service_id
    assert documented.requests[0][0] == (
        f"/v1/{PROJECT_ID}/services/a%2Fb%20%3F%23%25.~%C3%A9/monitor"
    )


@pytest.mark.parametrize("service_id", ["", "  ", ".", "..", "a\nb", "x" * 257, None, 7])
def test_it_rejects_a_service_id_it_cannot_send(
    documented: DocumentedAPI, service_id: object
) -> None:
    with pytest.raises(InvalidQueryError):
        client_for(documented.url).get_service(service_id)  # type: ignore[arg-type]

    assert documented.requests == []


def test_it_rejects_the_detail_of_another_service(documented: DocumentedAPI) -> None:
    with pytest.raises(ResponseError, match=f"sent the detail of service '{SHOW_ID}' when asked"):
        client_for(documented.url).get_service("some-other-service")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"service_id": "svc-1", "config": [', "not JSON"),
        (b"<html>oops</html>", "not JSON .*oops"),
        (b"[]", "unusable detail of service 'svc-1': the service detail must be a JSON object"),
        (b'{"service_name": "x"}', "no usable service_id"),
    ],
)
def test_it_rejects_a_body_it_cannot_read(
    documented: DocumentedAPI, body: bytes, problem: str
) -> None:
    documented.answer = (200, body)

    with pytest.raises(ResponseError, match=problem):
        client_for(documented.url).get_service("svc-1")


def test_it_does_not_quote_a_broken_body_that_names_envs(documented: DocumentedAPI) -> None:
    secret = "hunter2-in-a-cut-body"
    documented.answer = (200, f'{{"service_id":"svc-1","config":[{{"envs":{{"P":"{secret}'.encode())

    with pytest.raises(ResponseError) as caught:
        client_for(documented.url).get_service("svc-1")

    assert "not quoted" in str(caught.value)
    assert secret not in str(caught.value)


def test_it_takes_only_the_documented_code_for_service_not_found(
    documented: DocumentedAPI,
) -> None:
    # A bare 404 is as likely a wrong endpoint path as a missing service.
    documented.answer = (404, b'{"error_code": "APIG.0101", "error_msg": "No API here."}')

    with pytest.raises(APIError) as caught:
        client_for(documented.url).get_service("svc-1")

    assert not isinstance(caught.value, ServiceNotFound)
    assert (caught.value.status, caught.value.code) == (404, "APIG.0101")


# --- against the simulator -------------------------------------------------------------------


def test_it_reads_every_api_of_a_simulated_service(
    simulator: SimulatorServer, fleet: Fleet
) -> None:
    service_id = service_in(fleet, "running")
    client = client_for(simulator.url)

    detail = client.get_service(service_id)
    events = client.list_events(service_id)
    monitor = client.get_monitor(service_id)
    logs = client.list_update_logs(service_id)

    assert detail.service_id == events.service_id == monitor.service_id == service_id
    assert detail.status == "running" and detail.access_address
    assert events.events and events.complete
    assert monitor.running_instances == monitor.desired_instances == detail.config[0].instance_count
    assert logs.logs[0].result == "SUCCESS"


def test_it_shows_why_a_simulated_service_failed(simulator: SimulatorServer, fleet: Fleet) -> None:
    service_id = service_in(fleet, "failed")
    client = client_for(simulator.url)

    detail = client.get_service(service_id)
    abnormal = client.list_events(service_id, event_type="abnormal")

    assert detail.error_msg.startswith(("Service failed: ", "Batch job failed: "))
    assert abnormal.events[0].event_info == detail.error_msg
    assert {event.event_type for event in abnormal.events} == {"abnormal"}


def test_it_never_keeps_the_env_values_of_a_simulated_service(
    simulator: SimulatorServer, fleet: Fleet
) -> None:
    service_id = service_in(fleet, "running")
    secrets = secrets_of(simulator, service_id)
    client = client_for(simulator.url)

    detail = client.get_service(service_id)
    logs = client.list_update_logs(service_id)

    assert secrets  # the simulator does send secret-looking values
    assert set(detail.env_names) == set(simulator.details.envs(service_id))
    assert set(logs.logs[0].config[0].env_names) == set(detail.env_names)
    kept = f"{detail!r} {json.dumps(detail.raw)} {logs!r} {detail.config!r}"
    assert not [secret for secret in secrets if secret in kept]


@pytest.mark.parametrize("call", CALLS)
def test_it_raises_service_not_found_for_an_unknown_service(
    simulator: SimulatorServer, call: str
) -> None:
    service_id = "00000000-0000-4000-8000-000000000000"

    with pytest.raises(ServiceNotFound) as caught:
        getattr(client_for(simulator.url), call)(service_id)

    error = caught.value
    assert isinstance(error, APIError)
    assert (error.status, error.code, error.service_id) == (404, "ModelArts.3502", service_id)
    assert str(error).startswith(f"ModelArts.3502: Service '{service_id}' does not exist.")


def test_it_raises_service_not_found_once_a_service_is_deleted(clock: ManualClock) -> None:
    fleet = Fleet(size=1000, seed=7, clock=clock)  # about 1% of services get deleted
    doomed = next(p for p in fleet.profiles if p.plan.final == GONE and p.plan.published < 0)
    with SimulatorServer(fleet, project_id=PROJECT_ID, auth="token", token=TOKEN) as server:
        client = client_for(server.url)
        assert client.get_service(doomed.service_id).service_id == doomed.service_id

        clock.set(fleet.start + doomed.plan.gone_at / 1000 + 1)
        for call in CALLS:
            with pytest.raises(ServiceNotFound):
                getattr(client, call)(doomed.service_id)


def test_it_sends_an_escaped_id_the_simulator_reads_back(simulator: SimulatorServer) -> None:
    service_id = "../services?x=1#frag"

    with pytest.raises(ServiceNotFound) as caught:
        client_for(simulator.url).list_events(service_id)

    assert caught.value.service_id == service_id
    assert repr(service_id) in caught.value.message
    assert simulator.requests[-1].path.startswith(
        f"/v1/{PROJECT_ID}/services/{quote(service_id, safe='')}/events?"
    )


@pytest.mark.parametrize("call", CALLS)
def test_it_raises_an_auth_error_for_a_refused_token(
    simulator: SimulatorServer, fleet: Fleet, call: str
) -> None:
    secret = "wrong-token-for-details-3f9a"

    with pytest.raises(AuthError) as caught:
        getattr(client_for(simulator.url, token=secret), call)(service_in(fleet, "running"))

    assert (caught.value.status, caught.value.code) == (401, "ModelArts.0203")
    assert secret not in f"{caught.value} {caught.value!r}"


@pytest.mark.parametrize(
    ("call", "api", "code"),
    [
        ("get_service", "show", "ModelArts.3505"),
        ("list_events", "events", "ModelArts.3505"),
        ("get_monitor", "monitor", "ModelArts.3508"),
        ("list_update_logs", "logs", "ModelArts.3505"),
    ],
)
def test_it_retries_a_500_then_raises_it(
    simulator: SimulatorServer, fleet: Fleet, call: str, api: str, code: str
) -> None:
    service_id = service_in(fleet, "running")
    simulator.inject("500", times=3, api=api)
    before = simulator.request_count

    with pytest.raises(APIError) as caught:
        getattr(retrying_client(simulator.url), call)(service_id)

    error = caught.value
    assert not isinstance(error, ServiceNotFound)
    assert (error.status, error.code) == (500, code)
    assert "gave up after 3 attempts" in str(error)
    assert simulator.request_count - before == 3


def test_it_retries_until_a_detail_call_succeeds(simulator: SimulatorServer, fleet: Fleet) -> None:
    service_id = service_in(fleet, "concerning")
    simulator.inject("503", times=2, api="detail")

    monitor = retrying_client(simulator.url).get_monitor(service_id)

    assert monitor.below_desired
    assert len(simulator.requests) == 3


def test_it_does_not_retry_service_not_found(simulator: SimulatorServer) -> None:
    with pytest.raises(ServiceNotFound):
        retrying_client(simulator.url).get_monitor("no-such-service")

    assert len(simulator.requests) == 1


@pytest.mark.parametrize("fault", ["malformed-json", "malformed-json:garbage"])
def test_it_rejects_malformed_json_without_quoting_envs(
    simulator: SimulatorServer, fleet: Fleet, fault: str
) -> None:
    service_id = service_in(fleet, "running")
    simulator.inject(fault, api="show")

    with pytest.raises(ResponseError, match="not JSON") as caught:
        client_for(simulator.url).get_service(service_id)

    assert not [s for s in secrets_of(simulator, service_id) if s in str(caught.value)]


def test_it_times_out_on_a_slow_detail_answer(simulator: SimulatorServer, fleet: Fleet) -> None:
    simulator.inject("latency:2", api="events")

    with pytest.raises(TransportError, match="timed out after 0.2 s waiting"):
        client_for(simulator.url, timeout=0.2).list_events(service_in(fleet, "running"))


def test_it_sends_nothing_after_the_deadline(simulator: SimulatorServer, fleet: Fleet) -> None:
    with pytest.raises(DeadlineError):
        client_for(simulator.url).get_monitor(
            service_in(fleet, "running"), deadline=time.monotonic() - 1
        )

    assert simulator.requests == []
