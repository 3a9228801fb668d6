"""Parsing the per-service bodies: the documented examples, the drift around them, and env
values that must never be kept."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from conftest import EXAMPLES

from dashboard.modelarts import (
    ENV_VALUE_HIDDEN,
    EventPage,
    InvalidQueryError,
    ModelConfig,
    Monitor,
    NodeResult,
    ResponseError,
    Schedule,
    ServiceDetail,
    ServiceEvent,
    UpdateLogs,
)
from dashboard.modelarts.detail import event_params, hide_env_values

SECRET = "s3cr3t-db-password-never-shown"
OTHER_SECRET = "sk-live-0123456789abcdef"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def with_envs(envs: object) -> dict:
    body = example("show_service_example_v1_otc.json")
    body["config"][0]["envs"] = envs
    return body


# --- the documented examples ---------------------------------------------------------------


def test_it_parses_the_show_service_example() -> None:
    detail = ServiceDetail.from_json(example("show_service_example_v1_otc.json"))

    assert detail.service_id == "f76f20ba-78f5-44e8-893a-37c8c600c02f"
    assert detail.service_name == "service-demo"
    assert (detail.status, detail.progress, detail.infer_type) == ("running", 100, "real-time")
    assert detail.access_address == (
        "https://xxxxx.apigw.xxxxx.com/v1/infers/088458d9-5755-4110-97d8-1d21065ea10b/"
        "f76f20ba-78f5-44e8-893a-37c8c600c02f"
    )
    assert detail.cluster_id == "088458d9-5755-4110-97d8-1d21065ea10b"
    assert detail.workspace_id == "0"
    assert detail.error_msg == "" and detail.description == ""
    assert detail.publish_at == datetime(2020, 4, 2, 6, 33, 51, 902000, tzinfo=UTC)
    assert detail.update_time == datetime(2020, 4, 2, 6, 35, 58, 259000, tzinfo=UTC)
    assert detail.transition_at == detail.publish_at
    assert (detail.invocation_times, detail.failed_times) == (0, 0)
    assert (detail.is_shared, detail.is_free) == (False, False)
    assert detail.schedule == ()
    assert detail.config == (
        ModelConfig(
            model_id="044ebf3d-8bf4-48df-bf40-bad0e664c1e2",
            model_name="jar-model",
            model_version="1.0.1",
            specification="custom",
            weight=100,
            instance_count=1,
            status="notReady",
            scaling=False,
            cluster_id="",
            pool_name="",
            custom_spec={},
            env_names=(),
        ),
    )


def test_it_parses_the_events_example() -> None:
    page = EventPage.from_json(example("service_events_example_v1_otc.json"))

    assert page.service_id == "35de3ca9-1bca-4ae7-9cb0-914f30fa7d3e"
    assert page.service_name == "service-07085"
    assert (page.total_count, page.count, len(page.events)) == (9, 9, 9)
    assert page.complete and page.rejected == ()
    assert page.events[0] == ServiceEvent(
        event_type="normal",
        event_info="start to deploy service",
        occur_time=datetime(2019, 7, 8, 14, 47, 31, 764000, tzinfo=UTC),
    )
    assert page.events[-1].event_info == "[TF 3.0.0] starting model"
    assert page.events[-1].occur_time == datetime(2019, 7, 8, 14, 48, 52, 582000, tzinfo=UTC)
    assert not any(event.is_abnormal for event in page.events)


def test_it_parses_the_monitor_example() -> None:
    monitor = Monitor.from_json(example("service_monitor_example_v1_otc.json"))

    assert (monitor.service_id, monitor.service_name) == (
        "195c1f2d-136d-40af-a0f3-db5717d2634a",
        "mnist",
    )
    # The example leaves the service-wide counts out: unknown, not zero.
    assert monitor.running_instances is None and monitor.desired_instances is None
    assert monitor.requests_per_minute is None
    assert not monitor.below_desired
    (model,) = monitor.models
    assert (model.model_id, model.model_name, model.model_version) == (
        "0e07b41b-173e-42db-8c16-8e1b44cc0d44",
        "minst",  # sic
        "1.0.0",
    )
    assert (model.invocation_times, model.failed_times) == (50, 1)
    assert (model.cpu_core_usage, model.cpu_core_total) == (2.4, 4.0)
    assert (model.cpu_memory_usage, model.cpu_memory_total) == (2011.0, 8192.0)
    assert (model.gpu_usage, model.gpu_total) == (0.6, 1.0)
    assert model.gpu_memory_usage is None and model.npu_usage is None
    assert model.running_instances is None and model.desired_instances is None


def test_it_parses_the_update_logs_example() -> None:
    logs = UpdateLogs.from_json(example("service_update_logs_example_v1_otc.json"))

    assert (logs.service_id, logs.service_name) == ("195c1f2d-136d-40af-a0f3-db5717d2634a", "mnist")
    (log,) = logs.logs
    assert log.result == "SUCCESS"
    assert log.update_time == datetime(2019, 11, 26, 12, 10, 28, 888000, tzinfo=UTC)
    assert (log.success_num, log.failed_num, log.result_detail) == (None, None, ())
    (config,) = log.config
    assert (config.model_id, config.model_name, config.model_version) == (
        "0e07b41b-173e-42db-8c16-8e1b44cc0d44",
        "minst",
        "0.0.1",
    )
    assert (config.specification, config.weight, config.instance_count) == (
        "modelarts.vm.cpu.2u",
        100,
        1,
    )


# --- quirks -------------------------------------------------------------------------------


def test_it_reads_numbers_and_booleans_sent_as_strings() -> None:
    body = example("show_service_example_v1_otc.json")
    body.update(
        progress="100", invocation_times="12", is_shared="false", publish_at="1585809231902"
    )
    body["config"][0].update(weight="100.0", instance_count=" 2 ", scaling="true")

    detail = ServiceDetail.from_json(body)

    assert (detail.progress, detail.invocation_times, detail.is_shared) == (100, 12, False)
    assert detail.publish_at == datetime(2020, 4, 2, 6, 33, 51, 902000, tzinfo=UTC)
    config = detail.config[0]
    assert (config.weight, config.instance_count, config.scaling) == (100, 2, True)


def test_it_reads_the_monitor_figures_sent_as_strings() -> None:
    body = {
        "service_running_instance_count": "1",
        "service_instance_count": 3,
        "req_count_per_min": "42",
        "monitors": [
            {"cpu_core_usage": "2.5", "npu_usage": ".5", "npu_total": "1", "gpu_usage": "1_000"},
            {"cpu_core_usage": -1, "cpu_core_total": float("nan"), "gpu_usage": True},
            "not a model",
        ],
    }

    monitor = Monitor.from_json(body)

    assert (monitor.running_instances, monitor.desired_instances) == (1, 3)
    assert monitor.requests_per_minute == 42
    assert monitor.below_desired
    first, second = monitor.models
    assert (first.cpu_core_usage, first.npu_usage, first.npu_total) == (2.5, 0.5, 1.0)
    assert first.gpu_usage is None  # "1_000" is not a number the API would send
    assert (second.cpu_core_usage, second.cpu_core_total, second.gpu_usage) == (None, None, None)


def test_it_accepts_bodies_with_fields_left_out() -> None:
    detail = ServiceDetail.from_json({"service_id": "svc-1"})
    page = EventPage.from_json({"events": [{"event_type": "abnormal"}]})
    monitor = Monitor.from_json({})
    logs = UpdateLogs.from_json({"logs": [{}]})

    assert detail.service_name == detail.status == detail.error_msg == ""
    assert detail.config == () and detail.progress is None and detail.publish_at is None
    assert (page.total_count, page.count) == (1, 1)
    assert page.events[0] == ServiceEvent("abnormal", "", None) and page.events[0].is_abnormal
    assert monitor.models == () and monitor.running_instances is None
    assert logs.logs[0].result == "" and logs.logs[0].config == ()


def test_it_keeps_the_schedule_error_and_node_results() -> None:
    body = {
        "service_id": "svc-1",
        "status": "failed",
        "error_msg": "Insufficient resources",
        "schedule": [{"type": "stop", "time_unit": "HOURS", "duration": "2"}],
    }
    logs = {
        "logs": [
            {
                "result": "FAIL",
                "success_num": 0,
                "failed_num": "2",
                "result_detail": [
                    {
                        "result": False,
                        "node_id": "n1",
                        "node_name": "edge-1",
                        "operation": "deploy",
                    },
                    "junk",
                ],
            }
        ]
    }

    detail = ServiceDetail.from_json(body)
    (log,) = UpdateLogs.from_json(logs).logs

    assert detail.error_msg == "Insufficient resources"
    assert detail.schedule == (Schedule(type="stop", time_unit="HOURS", duration=2),)
    assert (log.result, log.success_num, log.failed_num) == ("FAIL", 0, 2)
    assert log.result_detail == (NodeResult(False, "n1", "edge-1", "deploy"),)


def test_it_counts_a_page_with_more_events_behind_it_as_incomplete() -> None:
    page = EventPage.from_json({"total_count": "20", "count": 2, "events": [{}, {}, 7]})

    assert (page.total_count, page.count, len(page.events)) == (20, 2, 2)
    assert page.rejected == ("events[2]: an event must be an object, not a int",)
    assert not page.complete


@pytest.mark.parametrize(
    ("parse", "body", "problem"),
    [
        (ServiceDetail.from_json, [], "the service detail must be a JSON object, not a list"),
        (ServiceDetail.from_json, {"service_name": "x"}, "no usable service_id"),
        (ServiceDetail.from_json, {"service_id": 7}, "no usable service_id"),
        (EventPage.from_json, "events", "the event log must be a JSON object"),
        (EventPage.from_json, {"total_count": 1}, "'events' must be a list, not missing/null"),
        (Monitor.from_json, None, "the monitoring answer must be a JSON object"),
        (Monitor.from_json, {"monitors": {}}, "'monitors' must be a list, not an object"),
        (UpdateLogs.from_json, 3, "the update logs must be a JSON object, not a int"),
        (UpdateLogs.from_json, {"logs": "none"}, "'logs' must be a list, not a string"),
    ],
)
def test_it_rejects_bodies_it_cannot_read(parse, body: object, problem: str) -> None:
    with pytest.raises(ResponseError, match=problem):
        parse(body)


# --- env values are never kept --------------------------------------------------------------


def test_it_keeps_env_names_and_drops_their_values() -> None:
    body = with_envs({"DB_PASSWORD": SECRET, "LOG_LEVEL": "INFO", "API_KEY": OTHER_SECRET})

    detail = ServiceDetail.from_json(body)

    assert detail.config[0].env_names == ("DB_PASSWORD", "LOG_LEVEL", "API_KEY")
    assert detail.env_names == ("DB_PASSWORD", "LOG_LEVEL", "API_KEY")
    assert detail.raw["config"][0]["envs"] == dict.fromkeys(
        ("DB_PASSWORD", "LOG_LEVEL", "API_KEY"), ENV_VALUE_HIDDEN
    )
    shown = f"{detail!r} {detail.config!r} {json.dumps(detail.raw)} {detail}"
    assert SECRET not in shown and OTHER_SECRET not in shown and "INFO" not in shown


def test_it_leaves_the_callers_body_alone_unless_it_owns_it() -> None:
    body = with_envs({"DB_PASSWORD": SECRET})
    untouched = copy.deepcopy(body)

    ServiceDetail.from_json(body)
    assert body == untouched

    ServiceDetail.from_json(body, owned=True)
    # The client's own parse: nothing else holds the body, and now it holds no secret either.
    assert body["config"][0]["envs"] == {"DB_PASSWORD": ENV_VALUE_HIDDEN}


@pytest.mark.parametrize(
    ("envs", "names", "hidden"),
    [
        (
            [{"name": "DB_PASSWORD", "value": SECRET}, {"value": OTHER_SECRET}],
            ("DB_PASSWORD",),
            [{"name": "DB_PASSWORD", "value": ENV_VALUE_HIDDEN}],
        ),
        (f"DB_PASSWORD={SECRET};API_KEY={OTHER_SECRET}", (), ENV_VALUE_HIDDEN),
        ({"DB_PASSWORD": {"from": SECRET}}, ("DB_PASSWORD",), {"DB_PASSWORD": ENV_VALUE_HIDDEN}),
    ],
)
def test_it_hides_env_values_of_undocumented_shapes(
    envs: object, names: tuple[str, ...], hidden: object
) -> None:
    detail = ServiceDetail.from_json(with_envs(envs))

    assert detail.env_names == names
    assert detail.raw["config"][0]["envs"] == hidden
    assert SECRET not in repr(detail) + json.dumps(detail.raw)
    assert OTHER_SECRET not in repr(detail) + json.dumps(detail.raw)


def test_it_hides_envs_wherever_they_are_nested() -> None:
    body = {
        "service_id": "svc-1",
        "additional_properties": {"extend_config": [{"envs": {"TOKEN": SECRET}}]},
        "config": [{"envs": {"A": OTHER_SECRET}, "nodes": [[{"envs": {"B": SECRET}}]]}],
    }

    raw = json.dumps(ServiceDetail.from_json(body).raw)

    assert SECRET not in raw and OTHER_SECRET not in raw
    assert '"TOKEN": "[hidden]"' in raw and '"B": "[hidden]"' in raw


def test_it_keeps_no_env_values_from_update_logs() -> None:
    body = example("service_update_logs_example_v1_otc.json")
    body["logs"][0]["config"][0]["envs"] = {"DB_PASSWORD": SECRET}
    body["logs"][0]["extend_config"] = [{"envs": {"API_KEY": OTHER_SECRET}}]

    logs = UpdateLogs.from_json(body)

    assert logs.logs[0].config[0].env_names == ("DB_PASSWORD",)
    assert SECRET not in repr(logs) and OTHER_SECRET not in repr(logs)


def test_it_hides_env_values_in_place_without_recursing() -> None:
    # Deeper than Python's recursion limit, as json.loads can still produce.
    deep: dict = {"envs": {"X": SECRET}}
    for _ in range(5000):
        deep = {"next": deep}

    hide_env_values(deep)

    while "next" in deep:
        deep = deep["next"]
    assert deep == {"envs": {"X": ENV_VALUE_HIDDEN}}


# --- the events query -----------------------------------------------------------------------


def params(**given: object) -> list[tuple[str, str]]:
    values: dict = {
        "event_type": None,
        "start_time": None,
        "end_time": None,
        "offset": 0,
        "limit": 1000,
        "order": None,
    }
    return event_params(**{**values, **given})


def test_it_builds_the_events_query_sorted_by_name() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=8)))  # 01:00 UTC

    assert params() == [("limit", "1000"), ("offset", "0")]
    assert params(event_type="abnormal", start_time=start, end_time=end, order="asc") == [
        ("end_time", "1767229200000"),
        ("event_type", "abnormal"),
        ("limit", "1000"),
        ("offset", "0"),
        ("order", "asc"),
        ("start_time", "1767225600000"),
    ]


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"event_type": "warning"}, "event_type must be normal or abnormal"),
        ({"order": "up"}, "order must be asc or desc"),
        ({"limit": 0}, "limit must be between 1 and 1000"),
        ({"limit": 1001}, "limit must be between 1 and 1000"),
        ({"offset": -1}, "offset must be at least 0"),
        ({"offset": True}, "offset must be a whole number"),
        ({"start_time": datetime(2026, 1, 1)}, "start_time must be timezone-aware"),
        ({"end_time": 1767225600000}, "end_time must be a datetime, not int"),
        (
            {
                "start_time": datetime(2026, 1, 2, tzinfo=UTC),
                "end_time": datetime(2026, 1, 1, tzinfo=UTC),
            },
            "end_time must not be before start_time",
        ),
    ],
)
def test_it_rejects_a_bad_events_query(given: dict, problem: str) -> None:
    with pytest.raises(InvalidQueryError, match=problem):
        params(**given)
