from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from dashboard.devtools.simulator import Fault, Fleet, SimulatorServer

PROJECT_ID = "0123456789abcdef0123456789abcdef"
TOKEN = "test-token-5f0e2c"
LIST = f"/v1/{PROJECT_ID}/services"


@pytest.fixture
def server(fleet: Fleet) -> Iterator[SimulatorServer]:
    server = SimulatorServer(fleet, project_id=PROJECT_ID).start()
    yield server
    server.stop()


def get(server: SimulatorServer, query: str = "", timeout: float = 10) -> requests.Response:
    return requests.get(f"{server.url}{LIST}{query}", timeout=timeout)


def page(server: SimulatorServer, number: int, limit: int = 10) -> dict[str, Any]:
    response = get(server, f"?offset={number}&limit={limit}")
    assert response.status_code == 200, response.text
    return response.json()


def ids(body: dict[str, Any]) -> list[str]:
    return [item["service_id"] for item in body["services"]]


# The written form


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("503", Fault("503")),
        ("500:retry-after=3", Fault("500", retry_after=3.0)),
        ("429", Fault("429", retry_after=1.0)),
        ("429:retry-after=2", Fault("429", retry_after=2.0)),
        ("429:2,gateway", Fault("429", retry_after=2.0, gateway=True)),
        ("latency:1.5", Fault("latency", seconds=1.5)),
        ("latency", Fault("latency", seconds=1.0)),
        ("timeout", Fault("timeout", seconds=30.0)),
        ("timeout:0.3", Fault("timeout", seconds=0.3)),
        ("timeout:hold=0.3", Fault("timeout", seconds=0.3)),
        ("malformed-json", Fault("malformed-json")),
        ("malformed-json:garbage", Fault("malformed-json", garbage=True)),
        ("truncated", Fault("truncated")),
        ("wrong-types", Fault("wrong-types")),
        ("total-count-drift", Fault("total-count-drift", by=5)),
        ("total-count-drift:-3", Fault("total-count-drift", by=-3)),
        ("duplicate-ids", Fault("duplicate-ids")),
        ("duplicate-ids:2", Fault("duplicate-ids", count=2)),
        ("html-502", Fault("html-502")),
    ],
)
def test_it_reads_fault_specs(spec: str, expected: Fault) -> None:
    assert Fault.parse(spec) == expected
    assert Fault.parse(str(expected)) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("418", "unknown fault '418'"),
        ("latency:soon", "cannot read 'soon'"),
        ("latency:-1", "negative"),
        ("503:2", "503 takes retry-after=N"),
        ("html-502:gateway", "html-502 takes no arguments"),
        ("timeout:31", "at most 30"),
        ("duplicate-ids:0", "at least one"),
        ("total-count-drift:1.5", "cannot read"),
        ("429:retry-after=nan", "cannot read"),
    ],
)
def test_it_explains_a_bad_spec(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fault.parse(spec)


# Each fault on the wire


@pytest.mark.parametrize(
    ("spec", "status", "code"),
    [
        ("500", 500, "ModelArts.3505"),
        ("502", 502, "ModelArts.4302"),
        ("503", 503, "ModelArts.4700"),
        ("504", 504, "ModelArts.4503"),
    ],
)
def test_it_answers_server_errors_like_modelarts(
    server: SimulatorServer, spec: str, status: int, code: str
) -> None:
    server.inject(spec)
    response = get(server)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json().keys() == {"error_code", "error_msg"}
    assert response.json()["error_code"] == code
    assert "Retry-After" not in response.headers
    assert get(server).status_code == 200


def test_it_can_add_retry_after_to_a_server_error(server: SimulatorServer) -> None:
    server.inject("503:retry-after=7")
    response = get(server)
    assert (response.status_code, response.headers["Retry-After"]) == (503, "7")


def test_it_throttles_like_modelarts(server: SimulatorServer) -> None:
    server.inject("429")
    response = get(server)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error_code"] == "ModelArts.4206"


def test_it_throttles_like_the_api_gateway(server: SimulatorServer) -> None:
    server.inject("429:retry-after=0.25,gateway")
    response = get(server)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "0.25"
    body = response.json()
    assert body["error_code"] == "APIGW.0308"
    assert "throttling threshold" in body["error_msg"]
    assert body["request_id"] == response.headers["X-Request-Id"]


def test_it_answers_an_html_page_from_a_proxy(server: SimulatorServer) -> None:
    server.inject("html-502")
    response = get(server)
    assert response.status_code == 502
    assert response.headers["Content-Type"] == "text/html"
    assert "<title>502 Bad Gateway</title>" in response.text
    assert "<center>nginx</center>" in response.text
    with pytest.raises(ValueError):
        response.json()


def test_it_answers_late_with_latency(server: SimulatorServer) -> None:
    expected = get(server).json()
    server.inject("latency:0.05")
    started = time.monotonic()
    response = get(server)
    assert 0.05 <= time.monotonic() - started < 2
    assert response.json() == expected


def test_it_holds_a_connection_past_a_client_timeout(server: SimulatorServer) -> None:
    server.inject("timeout:0.3")
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        get(server, timeout=0.1)
    assert time.monotonic() - started < 0.3
    assert get(server).status_code == 200


def test_it_hangs_up_after_holding_without_an_answer(server: SimulatorServer) -> None:
    server.inject("timeout:0.2")
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        get(server, timeout=5)
    assert 0.2 <= time.monotonic() - started < 2


def test_it_stops_promptly_while_holding_a_connection(fleet: Fleet) -> None:
    server = SimulatorServer(fleet, project_id=PROJECT_ID).start()
    server.inject("timeout")  # the default: hold for 30 s
    before = set(threading.enumerate())
    errors: list[Exception] = []

    def call() -> None:
        try:
            get(server, timeout=20)
        except requests.RequestException as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.1)
    holding = set(threading.enumerate()) - before - {caller}
    assert holding  # the thread answering the call
    started = time.monotonic()
    server.stop()
    for thread in (caller, *holding):
        thread.join(timeout=5)
        assert not thread.is_alive()
    assert time.monotonic() - started < 2
    assert len(errors) == 1 and isinstance(errors[0], requests.ConnectionError)


def raw_get(server: SimulatorServer, target: str) -> tuple[dict[str, str], bytes]:
    """Headers and every body byte received before the server closed the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return {"Status": lines[0].split()[1], **headers}, body


def test_it_truncates_a_body_and_hangs_up(server: SimulatorServer) -> None:
    whole = get(server).content
    server.inject("truncated")
    headers, body = raw_get(server, LIST)
    assert headers["Status"] == "200"
    assert int(headers["Content-Length"]) == len(whole) > len(body) > 0
    assert whole.startswith(body)


def test_it_breaks_the_response_for_requests_when_truncated(server: SimulatorServer) -> None:
    server.inject("truncated")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(server)


def test_it_cuts_json_mid_object(server: SimulatorServer) -> None:
    whole = get(server).content
    server.inject("malformed-json")
    response = get(server)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert whole.startswith(response.content) and len(response.content) < len(whole)
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_it_adds_garbage_after_json(server: SimulatorServer) -> None:
    whole = get(server).content
    server.inject("malformed-json:garbage")
    response = get(server)
    assert response.status_code == 200
    assert response.content.startswith(whole) and len(response.content) > len(whole)
    with pytest.raises(json.JSONDecodeError, match="Extra data"):
        json.loads(response.content)


def test_it_gives_wrong_field_types_to_four_items(server: SimulatorServer) -> None:
    expected = page(server, 0)
    server.inject("wrong-types")
    body = page(server, 0)
    first, second, third, fourth, *rest = body["services"]
    assert (first["invocation_times"], first["failed_times"]) == ("lots", "a few")
    assert second["status"] == 1
    assert "service_id" not in third
    assert fourth["workspace_id"] == {"id": "0"}
    assert rest == expected["services"][4:]
    assert (body["total_count"], body["count"]) == (expected["total_count"], expected["count"])


def test_it_changes_total_count_on_a_later_page(server: SimulatorServer) -> None:
    total = page(server, 0)["total_count"]
    server.inject("total-count-drift:-3", page=1)
    assert page(server, 0)["total_count"] == total
    drifted = page(server, 1)
    assert drifted["total_count"] == total - 3
    assert drifted["count"] == 10
    assert page(server, 2)["total_count"] == total


def test_it_repeats_items_of_the_page_before(server: SimulatorServer) -> None:
    first, second = page(server, 0), page(server, 1)
    server.inject("duplicate-ids:4", page=1)
    shifted = page(server, 1)
    assert ids(shifted) == ids(first)[-4:] + ids(second)[:6]
    assert shifted["total_count"] == second["total_count"]
    # Paged through, four services are seen twice and four never.
    seen = ids(first) + ids(shifted) + ids(page(server, 2))
    assert len(seen) - len(set(seen)) == 4
    assert len(set(seen)) == 26


def test_it_repeats_items_on_the_first_page_too(server: SimulatorServer) -> None:
    first = page(server, 0)
    server.inject("duplicate-ids")  # half a page by default
    repeated = ids(page(server, 0))
    assert repeated == ids(first)[:5] + ids(first)[:5]


# Aiming faults


def test_it_injects_a_fault_the_given_number_of_times(server: SimulatorServer) -> None:
    server.inject("503", times=2)
    assert [get(server).status_code for _ in range(3)] == [503, 503, 200]
    assert server.request_count == 3
    assert [path for _, path, _ in server.requests] == [LIST] * 3


def test_it_injects_a_fault_for_one_page_only(server: SimulatorServer) -> None:
    server.inject("500", page=2)
    statuses = [get(server, f"?offset={n}&limit=5").status_code for n in (0, 1, 2, 2)]
    assert statuses == [200, 200, 500, 200]


def test_it_counts_pages_by_record_in_record_mode(fleet: Fleet) -> None:
    with SimulatorServer(fleet, project_id=PROJECT_ID, offset_mode="record") as server:
        server.inject("500", page=2)
        assert get(server, "?offset=10&limit=10").status_code == 200
        assert get(server, "?offset=25&limit=10").status_code == 500


def test_it_takes_queued_faults_in_order(server: SimulatorServer) -> None:
    server.inject("502")
    server.inject("html-502")
    first, second = get(server), get(server)
    assert first.headers["Content-Type"] == "application/json"
    assert second.headers["Content-Type"] == "text/html"


def test_it_clears_faults(server: SimulatorServer) -> None:
    server.inject("503", times=5)
    server.clear_faults()
    assert get(server).status_code == 200


def test_it_spends_faults_only_on_list_requests_that_get_through(fleet: Fleet) -> None:
    with SimulatorServer(fleet, project_id=PROJECT_ID, auth="token", token=TOKEN) as server:
        server.inject("503")
        assert get(server).status_code == 401
        headers = {"X-Auth-Token": TOKEN}
        bad = requests.get(f"{server.url}{LIST}?limit=0", headers=headers, timeout=10)
        assert bad.status_code == 400
        service = fleet.items()[0]["service_id"]
        one = requests.get(f"{server.url}{LIST}/{service}", headers=headers, timeout=10)
        assert one.status_code == 200
        assert requests.get(f"{server.url}{LIST}", headers=headers, timeout=10).status_code == 503


def test_it_refuses_to_inject_nothing(server: SimulatorServer) -> None:
    with pytest.raises(ValueError):
        server.inject("503", times=0)
    with pytest.raises(ValueError, match="unknown fault"):
        server.inject("teapot")


def statuses_of(fleet: Fleet, random_faults: list[tuple[str, float]], count: int) -> list[int]:
    with SimulatorServer(fleet, project_id=PROJECT_ID, random_faults=random_faults) as server:
        return [get(server, "?limit=1").status_code for _ in range(count)]


def test_it_fails_at_random_but_the_same_way_for_a_seed(fleet: Fleet) -> None:
    faults = [("503", 0.3), ("429:retry-after=0", 0.3)]
    first = statuses_of(fleet, faults, 40)
    assert first == statuses_of(fleet, faults, 40)
    assert {200, 429, 503} == set(first)
    reseeded = Fleet(size=fleet.size, seed=fleet.seed + 1, clock=fleet.clock)
    assert statuses_of(reseeded, faults, 40) != first


def test_it_puts_queued_faults_before_random_ones(fleet: Fleet) -> None:
    with SimulatorServer(fleet, project_id=PROJECT_ID, random_faults=[("503", 1.0)]) as server:
        server.inject("504")
        assert [get(server).status_code for _ in range(2)] == [504, 503]


def test_it_refuses_a_probability_outside_0_to_1(fleet: Fleet) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        SimulatorServer(fleet, random_faults=[("503", 1.5)])
