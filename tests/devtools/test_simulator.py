from __future__ import annotations

import json
import socket
from collections import Counter
from typing import Any

import pytest
import requests

from dashboard.devtools.simulator import Fleet, ManualClock, SimulatorServer
from dashboard.devtools.simulator.fleet import ListRequest
from dashboard.devtools.simulator.wire import encode

# The values tests/conftest.py starts the `simulator` fixture with.
PROJECT_ID = "0123456789abcdef0123456789abcdef"
TOKEN = "test-token-5f0e2c"
START = 1_767_225_600.0
HOUR = 3600.0
STATUSES = {
    "running",
    "deploying",
    "concerning",
    "failed",
    "stopped",
    "finished",
    "stopping",
    "deleting",
    "pending",
    "waiting",
}
ALWAYS = {
    "service_id",
    "service_name",
    "description",
    "tenant",
    "project",
    "owner",
    "publish_at",
    "infer_type",
    "workspace_id",
    "status",
    "progress",
    "invocation_times",
    "failed_times",
    "is_shared",
    "shared_count",
    "operation_time",
    "transition_at",
    "is_opened_sample_collection",
    "is_free",
}
SOMETIMES = {"schedule", "due_time", "start_time", "finished_time", "additional_properties"}


def make_fleet(size: int = 120, seed: int = 7, speed: float = 1.0) -> Fleet:
    return Fleet(size=size, seed=seed, clock=ManualClock(START), speed=speed)


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["service_id"]: item for item in items}


def history(fleet: Fleet, hours: float, step: float = 30.0) -> list[dict[str, dict[str, Any]]]:
    """The fleet's items every `step` seconds for `hours`, keyed by service id."""
    steps = int(hours * HOUR / step)
    return [by_id(fleet.items(START + n * step)) for n in range(steps + 1)]


# The fleet, as pure code


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(100.0)
    assert clock() == clock.now() == 100.0
    assert clock.advance(2.5) == 102.5
    clock.set(50.0)
    assert clock() == 50.0
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_it_gives_identical_items_for_the_same_seed() -> None:
    first, second = make_fleet(), make_fleet()
    for now in (START - HOUR, START, START + 1234.5, START + 5 * HOUR):
        assert json.dumps(first.items(now)) == json.dumps(second.items(now))


def test_it_gives_different_items_for_another_seed() -> None:
    ids = {item["service_id"] for item in make_fleet(seed=7).items(START)}
    assert not ids & {item["service_id"] for item in make_fleet(seed=8).items(START)}


def test_it_keeps_each_service_whatever_the_fleet_size() -> None:
    small, large = make_fleet(size=30), make_fleet(size=120)
    assert [small.item(i, START) for i in range(30)] == [large.item(i, START) for i in range(30)]


def test_it_uses_clock_time_by_default() -> None:
    fleet = make_fleet()
    fleet.clock.advance(90)
    assert fleet.items() == fleet.items(START + 90)
    assert {item["operation_time"] for item in fleet.items()} == {int((START + 90) * 1000)}


def test_it_gives_unique_ids_and_names() -> None:
    items = make_fleet(size=2000).items(START + HOUR)
    assert len({item["service_id"] for item in items}) == len(items)
    assert len({item["service_name"] for item in items}) == len(items)


def test_it_lists_documented_fields_and_values() -> None:
    items = make_fleet(size=1000).items(START)
    for item in items:
        assert ALWAYS <= item.keys() <= ALWAYS | SOMETIMES
        assert item["status"] in STATUSES
        assert item["infer_type"] in {"real-time", "batch", "edge"}
        assert item["workspace_id"] == "0"
        assert 0 <= item["failed_times"] <= item["invocation_times"]
        assert item["publish_at"] <= item["transition_at"] <= item["operation_time"]
    assert Counter(item["infer_type"] for item in items)["real-time"] > len(items) / 2
    assert any("schedule" in item and "due_time" in item for item in items)
    assert any("additional_properties" in item for item in items)


def test_it_never_decreases_counters() -> None:
    snapshots = history(make_fleet(), hours=3, step=37)
    for before, after in zip(snapshots, snapshots[1:], strict=False):
        for service_id, item in after.items():
            if service_id in before:
                assert item["invocation_times"] >= before[service_id]["invocation_times"]
                assert item["failed_times"] >= before[service_id]["failed_times"]


def test_it_finishes_deployments() -> None:
    snapshots = history(make_fleet(), hours=1, step=10)
    deploying = {sid for snap in snapshots for sid, i in snap.items() if i["status"] == "deploying"}
    finished = 0
    for service_id in deploying:
        progress: list[int] = []
        for snap in snapshots:
            item = snap.get(service_id)
            if item is not None and item["status"] == "deploying":
                progress.append(item["progress"])
            elif progress:
                # 60–180 s at 10 s a sample, rising, then up (or, rarely, failed).
                assert len(progress) <= 19 and progress == sorted(progress)
                assert item is not None and item["status"] in ("running", "failed")
                finished, progress = finished + 1, []
    assert finished >= 3


def test_it_changes_statuses_within_an_hour() -> None:
    fleet = make_fleet()
    before, after = by_id(fleet.items(START)), by_id(fleet.items(START + HOUR))
    changed = [
        sid for sid in before.keys() & after.keys() if before[sid]["status"] != after[sid]["status"]
    ]
    assert len(changed) >= 3
    for service_id in changed:
        assert after[service_id]["transition_at"] > before[service_id]["transition_at"]


def test_it_has_incidents_that_recover() -> None:
    snapshots = history(make_fleet(), hours=3, step=60)
    seen: Counter[tuple[str, str]] = Counter()
    for before, after in zip(snapshots, snapshots[1:], strict=False):
        for sid in before.keys() & after.keys():
            seen[(before[sid]["status"], after[sid]["status"])] += 1
    assert seen[("running", "concerning")] and seen[("concerning", "running")]
    assert seen[("concerning", "failed")] and seen[("failed", "concerning")]
    assert seen[("running", "stopping")]


def test_it_publishes_new_services_during_the_run() -> None:
    fleet = make_fleet()
    snapshots = history(fleet, hours=1, step=30)
    new = snapshots[-1].keys() - snapshots[0].keys()
    assert new
    for service_id in new:
        first = next(snap[service_id] for snap in snapshots if service_id in snap)
        assert first["status"] == "deploying"
        assert first["publish_at"] > START * 1000


def test_it_finishes_batch_services() -> None:
    fleet = make_fleet(size=1000)
    before, after = by_id(fleet.items(START + HOUR)), by_id(fleet.items(START + 3 * HOUR))
    running = [
        sid
        for sid, item in before.items()
        if item["infer_type"] == "batch" and item["status"] == "running"
    ]
    assert running
    finished = [after[sid] for sid in running if after[sid]["status"] == "finished"]
    assert finished
    for item in finished:
        assert item["start_time"] < item["finished_time"] == item["transition_at"]
    assert all("finished_time" not in before[sid] for sid in running)


def test_it_deletes_a_few_services() -> None:
    fleet = make_fleet(size=1000)
    gone = by_id(fleet.items(START)).keys() - by_id(fleet.items(START + 3 * HOUR)).keys()
    assert gone
    for service_id in gone:
        index = fleet.index_of(service_id)
        seen = [fleet.item(index, START + n * 20.0) for n in range(int(3 * HOUR / 20))]
        assert [item["status"] for item in seen if item is not None][-1] == "deleting"
        assert seen[-1] is None


def test_it_lists_services_as_they_come_and_go_whichever_moments_are_asked_for() -> None:
    # The listing is kept between moments a service appears or goes: asking back and forth
    # across such moments must still list exactly what items() lists.
    fleet = make_fleet(size=1000)
    moments = [START + HOUR, START, START + 3 * HOUR, START + 3 * HOUR + 1, START + HOUR]
    for now in moments:
        for sort_by in ("publish_at", "service_name"):
            _, desc = fleet.select(ListRequest(sort_by=sort_by, order="desc", limit=1000), now)
            total, asc = fleet.select(ListRequest(sort_by=sort_by, order="asc", limit=1000), now)
            assert total == len(asc) and asc == desc[::-1]
            assert {item["service_id"] for item in asc} == set(by_id(fleet.items(now)))


@pytest.mark.parametrize("hours", [0, 0.5, 3, 30])
def test_it_sends_exactly_the_items_it_lists(hours: float) -> None:
    # The list body is assembled from pre-encoded parts for speed: it must be exactly the JSON
    # encoding of the items it lists.
    fleet, now = make_fleet(size=500), START + hours * HOUR
    queries = [
        ListRequest(),
        ListRequest(sort_by="service_name", order="asc", start=7, limit=200),
        ListRequest(sort_by="transition_at", infer_type="batch"),
        *(ListRequest(status=status) for status in STATUSES),
    ]
    for query in queries:
        total, items = fleet.select(query, now)
        expected = encode({"total_count": total, "count": len(items), "services": items})
        assert fleet.select_body(query, now) == expected


def test_it_runs_faster_with_speed() -> None:
    normal, fast = make_fleet(), make_fleet(speed=10)
    statuses = [item["status"] for item in normal.items(START + HOUR)]
    assert [item["status"] for item in fast.items(START + HOUR / 10)] == statuses


# The server, over real HTTP


def list_url(server: SimulatorServer, project_id: str = PROJECT_ID) -> str:
    return f"{server.url}/v1/{project_id}/services"


def get(
    url: str, params: dict[str, Any] | None = None, token: str | None = TOKEN
) -> requests.Response:
    headers = {"X-Auth-Token": token} if token is not None else {}
    return requests.get(url, params=params, headers=headers, timeout=10)


def list_services(server: SimulatorServer, **params: Any) -> dict[str, Any]:
    response = get(list_url(server), params)
    assert response.status_code == 200, response.text
    return response.json()


def all_pages(server: SimulatorServer, limit: int, step: int, **params: Any) -> list[str]:
    ids, offset = [], 0
    while True:
        page = list_services(server, offset=offset, limit=limit, **params)
        if not page["services"]:
            return ids
        assert page["count"] == len(page["services"]) <= limit
        ids += [item["service_id"] for item in page["services"]]
        offset += step


def test_it_lists_every_service(simulator: SimulatorServer, fleet: Fleet) -> None:
    response = get(list_url(simulator))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert len(response.headers["X-Request-Id"]) == 32
    body = response.json()
    assert body["total_count"] == body["count"] == len(fleet.items())
    assert sorted(map(json.dumps, body["services"])) == sorted(map(json.dumps, fleet.items()))


def test_it_sorts_by_publish_time_newest_first_by_default(simulator: SimulatorServer) -> None:
    services = list_services(simulator)["services"]
    keys = [(item["publish_at"], item["service_id"]) for item in services]
    assert keys == sorted(keys, reverse=True)


@pytest.mark.parametrize("sort_by", ["publish_at", "service_name", "transition_at"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_it_sorts(simulator: SimulatorServer, sort_by: str, order: str) -> None:
    services = list_services(simulator, sort_by=sort_by, order=order)["services"]
    keys = [(item[sort_by], item["service_id"]) for item in services]
    assert keys == sorted(keys, reverse=order == "desc")


def test_it_filters_by_service_id(simulator: SimulatorServer, fleet: Fleet) -> None:
    wanted = fleet.items()[5]
    body = list_services(simulator, service_id=wanted["service_id"])
    assert body["total_count"] == body["count"] == 1
    assert body["services"] == [wanted]
    assert list_services(simulator, service_id="no-such-id")["total_count"] == 0


def test_it_filters_by_name_as_a_case_insensitive_substring(
    simulator: SimulatorServer, fleet: Fleet
) -> None:
    expected = {item["service_id"] for item in fleet.items() if "prod" in item["service_name"]}
    body = list_services(simulator, service_name="PRoD")
    assert expected and {item["service_id"] for item in body["services"]} == expected
    assert body["total_count"] == len(expected)


def test_it_filters_by_model_id(simulator: SimulatorServer, fleet: Fleet) -> None:
    body = list_services(simulator, model_id=fleet.model_id(3))
    assert [item["service_id"] for item in body["services"]] == [fleet.item(3)["service_id"]]


@pytest.mark.parametrize("infer_type", ["real-time", "batch", "edge"])
def test_it_filters_by_infer_type(infer_type: str) -> None:
    fleet = make_fleet(size=400)  # large enough to hold a few edge services
    expected = [item for item in fleet.items() if item["infer_type"] == infer_type]
    with SimulatorServer(fleet, project_id=PROJECT_ID) as server:
        body = list_services(server, infer_type=infer_type)
    assert expected and body["total_count"] == len(expected)
    assert {item["infer_type"] for item in body["services"]} == {infer_type}


def test_it_filters_by_status(simulator: SimulatorServer, fleet: Fleet, clock: ManualClock) -> None:
    clock.advance(HOUR)  # a moment with deployments and incidents in progress
    counts = Counter(item["status"] for item in fleet.items())
    assert len(counts) >= 4
    for status in STATUSES:
        body = list_services(simulator, status=status)
        assert body["total_count"] == counts[status]
        assert {item["status"] for item in body["services"]} <= {status}


def test_it_accepts_the_default_workspace_tags_and_cluster(simulator: SimulatorServer) -> None:
    everything = list_services(simulator)["total_count"]
    body = list_services(simulator, workspace_id="0", tags="team|ml", cluster_id="abc")
    assert body["total_count"] == everything


@pytest.mark.parametrize("limit", [1, 7, 1000])
def test_it_pages_without_overlap(simulator: SimulatorServer, limit: int) -> None:
    everything = [item["service_id"] for item in list_services(simulator)["services"]]
    # The documented meaning: offset is a page index.
    assert all_pages(simulator, limit=limit, step=1) == everything


def test_it_pages_by_record_in_record_mode(fleet: Fleet) -> None:
    with SimulatorServer(fleet, project_id=PROJECT_ID, offset_mode="record") as server:
        everything = [item["service_id"] for item in list_services(server)["services"]]
        assert all_pages(server, limit=9, step=9, sort_by="service_name", order="asc") == sorted(
            everything, key=lambda sid: fleet.item(fleet.index_of(sid))["service_name"]
        )
        page = list_services(server, offset=3, limit=2)
        assert [item["service_id"] for item in page["services"]] == everything[3:5]


def test_it_counts_the_total_apart_from_the_page(simulator: SimulatorServer, fleet: Fleet) -> None:
    total = len(fleet.items())
    body = list_services(simulator, offset=1, limit=50)
    assert (body["total_count"], body["count"]) == (total, 50)
    body = list_services(simulator, offset=999, limit=50)
    assert (body["total_count"], body["count"], body["services"]) == (total, 0, [])


def test_it_pages_by_status_and_transition_time(simulator: SimulatorServer) -> None:
    expected = list_services(simulator, status="running", sort_by="transition_at")["services"]
    ids = all_pages(simulator, limit=10, step=1, status="running", sort_by="transition_at")
    assert ids == [item["service_id"] for item in expected]


@pytest.mark.parametrize(
    ("query", "name", "value"),
    [
        ("status=sleeping", "status", "sleeping"),
        ("infer_type=realtime", "infer_type", "realtime"),
        ("sort_by=owner", "sort_by", "owner"),
        ("order=up", "order", "up"),
        ("offset=-1", "offset", "-1"),
        ("offset=two", "offset", "two"),
        ("limit=0", "limit", "0"),
        ("limit=1001", "limit", "1001"),
        ("limit=2.5", "limit", "2.5"),
        ("status=running&status=failed", "status", "2 times"),
    ],
)
def test_it_rejects_bad_parameters(
    simulator: SimulatorServer, query: str, name: str, value: str
) -> None:
    response = get(f"{list_url(simulator)}?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "ModelArts.0101"
    assert name in body["error_msg"] and value in body["error_msg"]


def test_it_rejects_an_unknown_workspace(simulator: SimulatorServer) -> None:
    response = get(list_url(simulator), {"workspace_id": "42"})
    assert response.status_code == 400
    assert response.json()["error_code"] == "ModelArts.0102"


def test_it_rejects_a_missing_token(simulator: SimulatorServer) -> None:
    response = get(list_url(simulator), token=None)
    assert response.status_code == 401
    assert response.json()["error_code"] == "ModelArts.0201"


def test_it_rejects_a_wrong_token_without_echoing_tokens(simulator: SimulatorServer) -> None:
    response = get(list_url(simulator), token="guessed-token")
    assert response.status_code == 401
    assert response.json()["error_code"] == "ModelArts.0203"
    assert "guessed" not in response.text and TOKEN not in response.text


def test_it_rejects_another_project(simulator: SimulatorServer) -> None:
    response = get(list_url(simulator, project_id="f" * 32))
    assert response.status_code == 403
    assert response.json()["error_code"] == "ModelArts.0210"


def test_it_needs_no_token_without_auth(fleet: Fleet) -> None:
    with SimulatorServer(fleet, project_id=PROJECT_ID, auth="none") as server:
        assert get(list_url(server), token=None).status_code == 200
        assert get(list_url(server, project_id="f" * 32), token=None).status_code == 403


def test_it_shows_one_service(simulator: SimulatorServer, fleet: Fleet) -> None:
    item = next(
        i for i in fleet.items() if i["status"] == "running" and i["infer_type"] == "real-time"
    )
    response = get(f"{list_url(simulator)}/{item['service_id']}")
    assert response.status_code == 200
    body = response.json()
    assert body.items() >= item.items()
    assert body["access_address"].endswith(item["service_id"])
    assert body["config"][0]["model_id"] == fleet.model_id(fleet.index_of(item["service_id"]))


def test_it_explains_why_a_service_failed(simulator: SimulatorServer, fleet: Fleet) -> None:
    item = next(i for i in fleet.items() if i["status"] == "failed")
    body = get(f"{list_url(simulator)}/{item['service_id']}").json()
    assert body["error_msg"] and "access_address" not in body


def test_it_answers_404_for_an_unknown_service(simulator: SimulatorServer) -> None:
    response = get(f"{list_url(simulator)}/00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.json()["error_code"] == "ModelArts.3502"


def test_it_answers_404_for_an_unknown_path(simulator: SimulatorServer) -> None:
    response = get(f"{simulator.url}/v2/{PROJECT_ID}/services")
    assert response.status_code == 404
    assert response.json()["error_code"]
    assert response.headers["X-Request-Id"]


def test_it_answers_405_for_other_methods(simulator: SimulatorServer) -> None:
    response = requests.post(
        list_url(simulator), json={}, headers={"X-Auth-Token": TOKEN}, timeout=10
    )
    assert response.status_code == 405
    assert response.json()["error_code"]
    assert response.headers["Allow"] == "GET"


def test_it_follows_the_clock(simulator: SimulatorServer, clock: ManualClock) -> None:
    clock.advance(600)
    services = list_services(simulator)["services"]
    assert {item["operation_time"] for item in services} == {int(clock() * 1000)}


def test_it_frees_its_port_when_stopped(fleet: Fleet) -> None:
    server = SimulatorServer(fleet).start()
    port, session = server.port, requests.Session()
    # The session keeps its connection open across stop(), which must not wait for it.
    assert session.get(list_url(server, fleet.project), timeout=10).status_code == 200
    server.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
