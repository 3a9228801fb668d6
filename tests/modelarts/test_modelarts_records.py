"""Parsing list bodies and error bodies: the documented examples and the drift around them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest import EXAMPLES

from dashboard.modelarts import (
    KNOWN_STATUSES,
    APIError,
    ResponseError,
    Schedule,
    ServicePage,
    ServiceRecord,
)


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def item(**fields: object) -> dict:
    return {"service_id": "svc-1", **fields}


def test_it_parses_the_otc_list_example() -> None:
    page = ServicePage.from_json(example("list_services_example_v1_otc.json"))

    assert (page.total_count, page.count, len(page.services)) == (1, 1, 1)
    service = page.services[0]
    assert service.service_id == "195c1f2d-136d-40af-a0f3-db5717d2634a"
    assert service.service_name == "mnist"
    assert service.description == ""
    assert service.owner == "b575785bcece44beb23597770fb819f9"
    assert service.workspace_id == "0"
    assert service.status == "running"
    assert service.infer_type == "real-time"
    assert (service.invocation_times, service.failed_times) == (50, 1)
    assert (service.is_shared, service.shared_count) == (False, 0)
    # The documented value is not a realistic ms timestamp, but it is still one.
    assert service.publish_at == datetime(1970, 1, 15, 9, 19, 3, 243000, tzinfo=UTC)
    assert service.schedule == ()
    assert service.progress is None
    assert service.is_free is None


def test_it_parses_the_2021_list_example() -> None:
    page = ServicePage.from_json(example("list_services_example_v1_hwc_zh_2021.json"))

    assert [s.service_name for s in page.services] == ["service-demo", "service-demo2"]
    service = page.services[0]
    assert service.schedule == (Schedule(type="stop", time_unit="HOURS", duration=1),)
    assert service.due_time == datetime(2020, 3, 19, 14, 3, 53, 902000, tzinfo=UTC)
    assert service.publish_at == datetime(2020, 3, 19, 13, 1, 40, 171000, tzinfo=UTC)
    assert service.transition_at == datetime(2020, 3, 19, 13, 6, 3, 721000, tzinfo=UTC)
    assert service.operation_time == datetime(2020, 4, 7, 9, 5, 54, 961000, tzinfo=UTC)
    assert service.is_opened_sample_collection is False
    assert service.is_free is False
    assert service.progress == 100
    assert service.additional_properties == {}
    assert service.start_time is None


def test_it_keeps_the_item_exactly_as_sent_in_raw() -> None:
    body = example("list_services_example_v1_hwc_zh_2021.json")

    page = ServicePage.from_json(body)

    assert page.services[1].raw == body["services"][1]


def test_it_keeps_unknown_fields_in_raw() -> None:
    record = ServiceRecord.from_json(item(cluster_id="pool-1", access_address="https://x"))

    assert record.raw["cluster_id"] == "pool-1"
    assert record.raw["access_address"] == "https://x"


def test_it_is_not_changed_by_later_edits_of_the_body() -> None:
    body = item(additional_properties={"smn_notification": {"events": [1]}})
    record = ServiceRecord.from_json(body)

    body["additional_properties"]["smn_notification"]["events"].append(2)

    assert record.additional_properties == {"smn_notification": {"events": [1]}}
    assert record.raw["additional_properties"]["smn_notification"]["events"] == [1]


def test_it_keeps_a_body_it_owns_without_copying_it() -> None:
    # The client parses each body for its records alone: copying 100,000 items took seconds.
    body = {"total_count": 1, "services": [item(additional_properties={"a": {"b": 1}})]}

    record = ServicePage.from_json(body, owned=True).services[0]

    assert record.raw is body["services"][0]
    assert record.additional_properties is body["services"][0]["additional_properties"]


def test_it_stores_an_unknown_status_as_sent() -> None:
    record = ServiceRecord.from_json(item(status="Upgrading"))

    assert record.status == "Upgrading"
    assert record.is_known_status is False


def test_it_knows_the_ten_documented_statuses_worst_first() -> None:
    assert len(set(KNOWN_STATUSES)) == 10
    assert KNOWN_STATUSES[0] == "failed"
    assert ServiceRecord.from_json(item(status="waiting")).is_known_status


def test_it_parses_counts_sent_as_strings() -> None:
    record = ServiceRecord.from_json(
        item(invocation_times="123", failed_times=" 4 ", shared_count="2.0", progress="50")
    )

    assert (record.invocation_times, record.failed_times) == (123, 4)
    assert (record.shared_count, record.progress) == (2, 50)


def test_it_accepts_counts_sent_as_integral_floats() -> None:
    record = ServiceRecord.from_json(item(invocation_times=7.0, failed_times=1e3))

    assert (record.invocation_times, record.failed_times) == (7, 1000)


@pytest.mark.parametrize(
    "value",
    [True, False, -1, 1.5, "abc", "", "1_000", "-3", "١٢", float("nan"), float("inf"), [], {}],
)
def test_it_turns_unreadable_counts_into_none(value: object) -> None:
    record = ServiceRecord.from_json(item(invocation_times=value))

    assert record.invocation_times is None


def test_it_rejects_a_progress_above_one_hundred_percent() -> None:
    assert ServiceRecord.from_json(item(progress=101)).progress is None


def test_it_parses_timestamps_sent_as_numeric_strings() -> None:
    record = ServiceRecord.from_json(item(publish_at="1584622900171", due_time=1584626633902.0))

    assert record.publish_at == datetime(2020, 3, 19, 13, 1, 40, 171000, tzinfo=UTC)
    assert record.due_time == datetime(2020, 3, 19, 14, 3, 53, 902000, tzinfo=UTC)


@pytest.mark.parametrize("value", [-1, 0, 253402300800000, "soon", True, None, 1.5])
def test_it_turns_absurd_timestamps_into_none(value: object) -> None:
    assert ServiceRecord.from_json(item(publish_at=value)).publish_at is None


def test_it_accepts_the_last_millisecond_of_year_9999() -> None:
    record = ServiceRecord.from_json(item(publish_at=253402300799999))

    assert record.publish_at is not None
    assert record.publish_at.year == 9999


def test_it_reads_booleans_sent_as_strings() -> None:
    record = ServiceRecord.from_json(
        item(is_opened_sample_collection="true", is_free="FALSE", is_shared="yes")
    )

    assert record.is_opened_sample_collection is True
    assert record.is_free is False
    assert record.is_shared is None


def test_it_keeps_nested_additional_properties_as_sent() -> None:
    properties = {
        "smn_notification": {"topic_urn": "urn:smn:x", "events": [1, 3]},
        "log_report_channels": [{"type": "LTS"}],
    }

    record = ServiceRecord.from_json(item(additional_properties=properties))

    assert record.additional_properties == properties


def test_it_fills_missing_fields_with_empty_values() -> None:
    record = ServiceRecord.from_json(item())

    assert (record.service_name, record.status, record.workspace_id) == ("", "", "")
    assert record.schedule == ()
    assert record.additional_properties == {}
    assert record.publish_at is None
    assert record.failure_rate is None


def test_it_ignores_garbage_in_text_fields_and_schedule() -> None:
    record = ServiceRecord.from_json(
        item(service_name=["x"], owner=None, schedule=[{"type": "stop"}, "junk"], tenant=True)
    )

    assert (record.service_name, record.owner, record.tenant) == ("", "", "")
    assert record.schedule == (Schedule(type="stop", time_unit="", duration=None),)


def test_it_computes_the_failure_rate() -> None:
    record = ServiceRecord.from_json(item(invocation_times=50, failed_times=1))

    assert record.failure_rate == 0.02
    assert ServiceRecord.from_json(item(invocation_times=0, failed_times=0)).failure_rate is None


@pytest.mark.parametrize("body", [None, "svc", ["svc-1"], 3])
def test_it_rejects_an_item_that_is_not_an_object(body: object) -> None:
    with pytest.raises(ResponseError, match="must be a JSON object"):
        ServiceRecord.from_json(body)


@pytest.mark.parametrize("service_id", [None, "", "   ", 42])
def test_it_rejects_an_item_without_a_usable_service_id(service_id: object) -> None:
    with pytest.raises(ResponseError, match="service_id"):
        ServiceRecord.from_json({"service_id": service_id, "service_name": "x"})


def test_it_counts_the_services_when_count_is_missing() -> None:
    page = ServicePage.from_json({"total_count": "5", "services": [item(), item()]})

    assert (page.total_count, page.count) == (5, 2)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "must be a JSON object"),
        ("ok", "must be a JSON object"),
        ({"total_count": 1}, "'services' must be a list"),
        ({"total_count": 1, "services": {"a": 1}}, "'services' must be a list"),
        ({"services": []}, "'total_count' must be a whole number"),
        ({"total_count": "many", "services": []}, "'total_count' must be a whole number"),
        ({"total_count": True, "services": []}, "'total_count' must be a whole number"),
        ({"total_count": -1, "services": []}, "'total_count' must be a whole number"),
    ],
)
def test_it_rejects_an_unusable_page(body: object, problem: str) -> None:
    with pytest.raises(ResponseError, match=problem):
        ServicePage.from_json(body)


def test_it_sets_aside_unreadable_items_and_keeps_the_rest() -> None:
    page = ServicePage.from_json(
        {"total_count": 3, "services": [item(), {"service_name": "x"}, "junk"]}
    )

    assert len(page.services) == 1
    assert page.count == 3
    assert page.rejected == (
        "services[1]: a service item has no usable service_id (None)",
        "services[2]: a service item must be a JSON object, not a string",
    )


def test_it_reads_the_documented_modelarts_error_body() -> None:
    text = (EXAMPLES / "error_generic_modelarts_otc.json").read_text()

    error = APIError.from_body(400, text, {"X-Request-Id": "1a2b"})

    assert (error.status, error.code) == (400, "AS.0001")
    assert error.message == "The format of message is error"
    assert error.request_id == "1a2b"
    assert str(error) == "AS.0001: The format of message is error (HTTP 400, request 1a2b)"


def test_it_reads_the_2021_error_body_with_error_message() -> None:
    text = (EXAMPLES / "error_generic_modelarts_hwc_zh_2021.json").read_text()

    error = APIError.from_body(400, text, {})

    assert (error.code, error.message, error.request_id) == (
        "AS.0001",
        "The format of message is error",
        None,
    )
    assert str(error) == "AS.0001: The format of message is error (HTTP 400)"


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"errorCode": "APIGW.0308", "errorMsg": "throttled"}, "APIGW.0308", "throttled"),
        ({"code": "ModelArts.0101", "message": "bad limit"}, "ModelArts.0101", "bad limit"),
        (
            {"error": {"code": 401, "message": "requires authentication", "title": "Unauth"}},
            "HTTP 401",
            "requires authentication",
        ),
        (
            {"error": {"code": "1101", "message": "user name invalid"}},
            "1101",
            "user name invalid",
        ),
        ({"error_code": "ModelArts.0203", "error_msg": ""}, "ModelArts.0203", "no message given"),
        ({"error_msg": "only a message"}, "HTTP 401", "only a message"),
    ],
)
def test_it_reads_other_error_body_shapes(body: dict, code: str, message: str) -> None:
    error = APIError.from_body(401, json.dumps(body), {})

    assert (error.code, error.message) == (code, message)


def test_it_takes_the_request_id_from_the_gateway_body() -> None:
    body = {"error_code": "APIGW.0301", "error_msg": "Incorrect IAM", "request_id": "r-9"}

    error = APIError.from_body(401, json.dumps(body), {})

    assert error.request_id == "r-9"
    assert str(error) == "APIGW.0301: Incorrect IAM (HTTP 401, request r-9)"


def test_it_prefers_the_request_id_header_over_the_body() -> None:
    body = {"error_code": "APIGW.0301", "error_msg": "x", "request_id": "from-body"}

    error = APIError.from_body(401, json.dumps(body), {"x-request-id": "from-header"})

    assert error.request_id == "from-header"


def test_it_quotes_the_text_of_an_html_error_page() -> None:
    page = (
        "<html><head><title>502 Bad Gateway</title><style>body{color:red}</style></head>"
        "<body><h1>502 Bad&nbsp;Gateway</h1>" + "<p>upstream gone</p>" * 50 + "</body></html>"
    )

    error = APIError.from_body(502, page, {})

    assert error.code == "HTTP 502"
    assert error.message.startswith("502 Bad Gateway 502 Bad Gateway upstream gone")
    assert "<" not in error.message and "color" not in error.message
    assert len(error.message) <= 200
    assert str(error).startswith("HTTP 502: 502 Bad Gateway")


def test_it_says_so_when_the_error_body_is_empty() -> None:
    error = APIError.from_body(503, "", {})

    assert str(error) == "HTTP 503: empty response body"


def test_it_quotes_json_that_has_no_error_fields() -> None:
    error = APIError.from_body(500, '{"unexpected": true}', {})

    assert (error.code, error.message) == ("HTTP 500", '{"unexpected": true}')
