"""The simulator's per-service APIs over HTTP: ShowService, events, monitor and update logs, with
their auth, 404s and faults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
from conftest import PROJECT_ID, TOKEN

from dashboard.devtools.simulator import Fleet, ManualClock, SimulatorServer
from dashboard.devtools.simulator.detail import CAUSES, SECRET_PREFIX, ServiceDetails

APIS = ("", "/events", "/monitor", "/logs")
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def url(server: SimulatorServer, service_id: str, api: str = "") -> str:
    return f"{server.url}/v1/{PROJECT_ID}/services/{quote(service_id, safe='')}{api}"


def get(target: str, token: str | None = TOKEN, **params: Any) -> requests.Response:
    headers = {"X-Auth-Token": token} if token is not None else {}
    return requests.get(target, params=params, headers=headers, timeout=10)


def body(server: SimulatorServer, service_id: str, api: str = "", **params: Any) -> Any:
    response = get(url(server, service_id, api), **params)
    assert response.status_code == 200, response.text
    return response.json()


def ids(fleet: Fleet, status: str) -> list[str]:
    return [item["service_id"] for item in fleet.items() if item["status"] == status]


@pytest.fixture
def big_fleet(clock: ManualClock) -> Fleet:
    return Fleet(size=600, seed=11, clock=clock)


@pytest.fixture
def big_simulator(big_fleet: Fleet) -> Iterator[SimulatorServer]:
    with SimulatorServer(big_fleet, project_id=PROJECT_ID, auth="token", token=TOKEN) as server:
        yield server


# --- what the bodies say ---------------------------------------------------------------------


def test_it_explains_every_failed_service_with_varied_reasons(
    big_simulator: SimulatorServer, big_fleet: Fleet
) -> None:
    failed = ids(big_fleet, "failed")
    messages = [body(big_simulator, service_id)["error_msg"] for service_id in failed]

    assert len(failed) >= 5
    assert all(
        message.startswith(("Service failed: ", "Batch job failed: ")) for message in messages
    )
    kinds = ("health check failed", "Insufficient resources", "pull image failed", "OOMKilled")
    assert len({kind for kind in kinds for message in messages if kind in message}) >= 3


def test_it_logs_the_failure_as_the_latest_abnormal_event(
    simulator: SimulatorServer, fleet: Fleet
) -> None:
    for service_id in ids(fleet, "failed"):
        show = body(simulator, service_id)
        events = body(simulator, service_id, "/events")

        abnormal = [e for e in events["events"] if e["event_type"] == "abnormal"]
        assert abnormal[0]["event_info"] == show["error_msg"]
        assert events["total_count"] == events["count"] == len(events["events"])
        assert events["service_name"] == show["service_name"]


def test_it_runs_concerning_services_below_their_desired_instances(
    big_simulator: SimulatorServer, big_fleet: Fleet
) -> None:
    concerning = ids(big_fleet, "concerning")
    assert concerning
    for service_id in concerning:
        monitor = body(big_simulator, service_id, "/monitor")
        assert monitor["service_running_instance_count"] < monitor["service_instance_count"]
        model = monitor["monitors"][0]
        assert model["model_running_instance_count"] == monitor["service_running_instance_count"]
        # The incident is the latest news: an abnormal event, or the restart after a failure.
        latest = body(big_simulator, service_id, "/events")["events"][:2]
        assert latest[0]["event_type"] == "abnormal" or "restarting" in latest[0]["event_info"]
        assert "abnormal" in {event["event_type"] for event in latest}


def test_it_runs_every_instance_of_a_running_service(
    simulator: SimulatorServer, fleet: Fleet
) -> None:
    for service_id in ids(fleet, "running")[:10]:
        monitor = body(simulator, service_id, "/monitor")
        show = body(simulator, service_id)
        desired = show["config"][0]["instance_count"]
        assert monitor["service_running_instance_count"] == desired
        assert monitor["service_instance_count"] == desired
        assert monitor["req_count_per_min"] >= 0
        model = monitor["monitors"][0]
        assert 0 < model["cpu_core_usage"] <= model["cpu_core_total"]
        assert 0 < model["cpu_memory_usage"] <= model["cpu_memory_total"]


def test_it_reports_accelerators_of_gpu_and_npu_flavors(
    big_simulator: SimulatorServer, big_fleet: Fleet
) -> None:
    kinds = set()
    for service_id in ids(big_fleet, "running")[:80]:
        flavor = body(big_simulator, service_id)["config"][0]["specification"]
        model = body(big_simulator, service_id, "/monitor")["monitors"][0]
        kind = "npu" if ".kat1." in flavor else "gpu" if ".gpu." in flavor else "cpu"
        kinds.add(kind)
        for accelerator in ("gpu", "npu"):
            assert (f"{accelerator}_usage" in model) == (kind == accelerator)
    assert kinds == {"cpu", "gpu", "npu"}


def test_it_shows_a_deploying_service_with_a_running_update_log(
    big_simulator: SimulatorServer, big_fleet: Fleet, clock: ManualClock
) -> None:
    # Restarting services redeploy now and then; step through time until one does.
    for _ in range(200):
        deploying = ids(big_fleet, "deploying")
        if deploying:
            break
        clock.advance(60)
    assert deploying
    for service_id in deploying:
        logs = body(big_simulator, service_id, "/logs")["logs"]
        assert logs[0]["result"] == "RUNNING"
        assert all(log["result"] in ("SUCCESS", "FAIL") for log in logs[1:])
        monitor = body(big_simulator, service_id, "/monitor")
        assert monitor["service_running_instance_count"] < monitor["service_instance_count"]


def test_it_keeps_the_deployment_history_newest_first(
    simulator: SimulatorServer, fleet: Fleet
) -> None:
    for service_id in ids(fleet, "running")[:10]:
        logs = body(simulator, service_id, "/logs")
        times = [log["update_time"] for log in logs["logs"]]
        assert times == sorted(times, reverse=True)
        assert logs["logs"][-1]["config"][0]["model_id"] == fleet.model_id(
            fleet.index_of(service_id)
        )


def test_it_gives_models_envs_with_secret_looking_values(
    simulator: SimulatorServer, fleet: Fleet
) -> None:
    service_id = ids(fleet, "running")[0]
    envs = body(simulator, service_id)["config"][0]["envs"]

    assert envs == simulator.details.envs(service_id)
    assert any(value.startswith(SECRET_PREFIX) for value in envs.values())
    assert body(simulator, service_id, "/logs")["logs"][0]["config"][0]["envs"] == envs


def test_it_makes_the_same_detail_from_the_same_seed(fleet: Fleet, clock: ManualClock) -> None:
    twin = Fleet(size=120, seed=7, clock=clock)
    service_id = ids(fleet, "failed")[0]
    ours, theirs = ServiceDetails(fleet), ServiceDetails(twin)

    assert ours.show(service_id) == theirs.show(service_id)
    assert ours.monitor(service_id) == theirs.monitor(service_id)
    assert ours.update_logs(service_id) == theirs.update_logs(service_id)
    assert ours.envs(service_id) == theirs.envs(service_id)


def test_it_varies_the_causes_across_the_fleet(big_fleet: Fleet) -> None:
    details = ServiceDetails(big_fleet)

    assert {details.cause(profile) for profile in big_fleet.profiles} == set(CAUSES.values())


# --- the events query ------------------------------------------------------------------------


def test_it_filters_and_pages_events(simulator: SimulatorServer, fleet: Fleet) -> None:
    service_id = ids(fleet, "running")[0]
    every = body(simulator, service_id, "/events")
    times = [event["occur_time"] for event in every["events"]]
    assert times == sorted(times, reverse=True)

    normal = body(simulator, service_id, "/events", event_type="normal")
    oldest = body(simulator, service_id, "/events", order="asc", limit=3)
    second = body(simulator, service_id, "/events", limit=3, offset=1)  # offset: a page index

    assert {event["event_type"] for event in normal["events"]} == {"normal"}
    assert oldest["events"][0]["event_info"] == "start to deploy service"
    assert (oldest["count"], oldest["total_count"]) == (3, every["total_count"])
    assert second["events"] == every["events"][3:6]
    since = body(simulator, service_id, "/events", start_time=times[1])
    assert since["events"] == every["events"][:2]


@pytest.mark.parametrize(
    "params",
    [{"event_type": "warning"}, {"limit": 0}, {"limit": 1001}, {"offset": "x"}, {"order": "up"}],
)
def test_it_rejects_a_bad_events_query(
    simulator: SimulatorServer, fleet: Fleet, params: dict
) -> None:
    response = get(url(simulator, ids(fleet, "running")[0], "/events"), **params)

    assert response.status_code == 400
    assert response.json()["error_code"] == "ModelArts.0101"


# --- auth and missing services ---------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_it_needs_the_token_for_every_api(
    simulator: SimulatorServer, fleet: Fleet, api: str
) -> None:
    target = url(simulator, ids(fleet, "running")[0], api)

    missing, wrong = get(target, token=None), get(target, token="not-the-token")

    assert (missing.status_code, missing.json()["error_code"]) == (401, "ModelArts.0201")
    assert (wrong.status_code, wrong.json()["error_code"]) == (401, "ModelArts.0203")


@pytest.mark.parametrize("api", APIS)
def test_it_checks_the_project_for_every_api(
    simulator: SimulatorServer, fleet: Fleet, api: str
) -> None:
    service_id = ids(fleet, "running")[0]
    response = get(f"{simulator.url}/v1/{'f' * 32}/services/{service_id}{api}")

    assert (response.status_code, response.json()["error_code"]) == (403, "ModelArts.0210")


@pytest.mark.parametrize("api", APIS)
def test_it_answers_404_for_an_unknown_service(simulator: SimulatorServer, api: str) -> None:
    response = get(url(simulator, UNKNOWN, api))

    assert response.status_code == 404
    assert response.json() == {
        "error_code": "ModelArts.3502",
        "error_msg": f"Service '{UNKNOWN}' does not exist.",
    }
    assert response.headers["X-Request-Id"]


def test_it_answers_404_for_an_unknown_per_service_api(
    simulator: SimulatorServer, fleet: Fleet
) -> None:
    response = get(url(simulator, ids(fleet, "running")[0], "/metrics"))

    assert (response.status_code, response.json()["error_code"]) == (404, "APIG.0101")


def test_it_reads_an_escaped_service_id(simulator: SimulatorServer, fleet: Fleet) -> None:
    service_id = ids(fleet, "running")[0]
    escaped = "".join(f"%{byte:02X}" for byte in service_id.encode())

    response = get(f"{simulator.url}/v1/{PROJECT_ID}/services/{escaped}/monitor")

    assert response.status_code == 200
    assert response.json()["service_id"] == service_id


# --- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "code"),
    [("", "ModelArts.3505"), ("/events", "ModelArts.3505"), ("/monitor", "ModelArts.3508")],
)
def test_it_fails_a_detail_api_with_an_injected_500(
    simulator: SimulatorServer, fleet: Fleet, api: str, code: str
) -> None:
    target = url(simulator, ids(fleet, "running")[0], api)
    simulator.inject("500", api=api.lstrip("/") or "show")

    response = get(target)

    assert (response.status_code, response.json()["error_code"]) == (500, code)
    assert get(target).status_code == 200


def test_it_aims_a_fault_at_one_api_only(simulator: SimulatorServer, fleet: Fleet) -> None:
    service_id = ids(fleet, "running")[0]
    simulator.inject("503:retry-after=2", api="logs")

    assert get(url(simulator, service_id)).status_code == 200
    assert get(f"{simulator.url}/v1/{PROJECT_ID}/services").status_code == 200
    failed = get(url(simulator, service_id, "/logs"))
    assert (failed.status_code, failed.headers["Retry-After"]) == (503, "2")
    assert failed.json()["error_code"] == "ModelArts.4700"


def test_it_keeps_faults_injected_without_an_api_for_the_list(
    simulator: SimulatorServer, fleet: Fleet
) -> None:
    simulator.inject("503")

    assert get(url(simulator, ids(fleet, "running")[0], "/monitor")).status_code == 200
    assert get(f"{simulator.url}/v1/{PROJECT_ID}/services").status_code == 503


def test_it_uses_no_fault_up_on_an_unknown_service(simulator: SimulatorServer) -> None:
    simulator.inject("500", api="detail")

    assert get(url(simulator, UNKNOWN)).status_code == 404
    assert get(url(simulator, UNKNOWN, "/events")).status_code == 404
    # Still queued for the first service that exists.
    assert get(url(simulator, simulator.fleet.items()[0]["service_id"])).status_code == 500


def test_it_delays_a_detail_answer(simulator: SimulatorServer, fleet: Fleet) -> None:
    target = url(simulator, ids(fleet, "running")[0], "/events")
    expected = get(target).json()
    simulator.inject("latency:0.2", api="events")

    started = time.monotonic()
    response = get(target)

    assert 0.2 <= time.monotonic() - started < 5
    assert response.json() == expected


def test_it_cuts_a_detail_body(simulator: SimulatorServer, fleet: Fleet) -> None:
    target = url(simulator, ids(fleet, "running")[0])
    whole = get(target).content
    simulator.inject("malformed-json", api="show")

    response = get(target)

    assert response.status_code == 200
    assert whole.startswith(response.content) and len(response.content) < len(whole)


def test_it_refuses_list_only_faults_for_detail_apis(simulator: SimulatorServer) -> None:
    for fault in ("wrong-types", "total-count-drift", "duplicate-ids"):
        with pytest.raises(ValueError, match="bends a service list"):
            simulator.inject(fault, api="monitor")
    with pytest.raises(ValueError, match="unknown API 'metrics'"):
        simulator.inject("503", api="metrics")


def test_it_hits_detail_apis_with_random_faults_that_fit_them(fleet: Fleet) -> None:
    service_id = ids(fleet, "running")[0]
    with SimulatorServer(
        fleet, project_id=PROJECT_ID, random_faults=[("wrong-types", 1.0)]
    ) as bending:
        assert get(url(bending, service_id)).status_code == 200
    with SimulatorServer(fleet, project_id=PROJECT_ID, random_faults=[("503", 1.0)]) as failing:
        for api in APIS:
            assert get(url(failing, service_id, api)).status_code == 503
