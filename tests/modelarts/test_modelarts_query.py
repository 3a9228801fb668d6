"""ServiceQuery: what it accepts, what it rejects before any request, and what it sends."""

from __future__ import annotations

import pytest

from dashboard.modelarts import SORT_FIELDS, InvalidQueryError, ModelArtsError, ServiceQuery


def test_it_sends_nothing_for_an_empty_query() -> None:
    assert ServiceQuery().to_params() == []


def test_it_sends_only_the_set_parameters_sorted_by_name() -> None:
    query = ServiceQuery(
        status="running",
        service_name="demo svc",
        infer_type="real-time",
        limit=10,
        order="asc",
        sort_by="service_name",
        workspace_id="0",
        model_id="m-1",
        service_id="s-1",
    )

    assert query.to_params() == [
        ("infer_type", "real-time"),
        ("limit", "10"),
        ("model_id", "m-1"),
        ("offset", "0"),
        ("order", "asc"),
        ("service_id", "s-1"),
        ("service_name", "demo svc"),
        ("sort_by", "service_name"),
        ("status", "running"),
        ("workspace_id", "0"),
    ]


def test_it_sends_offset_when_paging_or_when_not_zero() -> None:
    assert ServiceQuery(offset=3).to_params() == [("offset", "3")]
    assert ServiceQuery(limit=5).to_params() == [("limit", "5"), ("offset", "0")]


def test_it_maps_the_sdk_service_status_to_the_rest_status() -> None:
    query = ServiceQuery.from_sdk(service_status="running", offset="0", limit="100")

    assert query == ServiceQuery(status="running", offset=0, limit=100)
    assert ("status", "running") in query.to_params()


def test_it_takes_every_sdk_parameter() -> None:
    query = ServiceQuery.from_sdk(
        service_id="s",
        service_name="n",
        infer_type="batch",
        offset=2,
        limit=50,
        service_status="finished",
        sort_by="publish_at",
        order="desc",
        model_id="m",
        workspace_id="w",
    )

    assert query == ServiceQuery(
        service_id="s",
        service_name="n",
        model_id="m",
        infer_type="batch",
        status="finished",
        workspace_id="w",
        offset=2,
        limit=50,
        sort_by="publish_at",
        order="desc",
    )


@pytest.mark.parametrize("value", ["zero", "-1", "1.5", "", " ", "١", 1.0, True, [0]])
def test_it_rejects_non_numeric_sdk_paging(value: object) -> None:
    with pytest.raises(InvalidQueryError, match="whole number"):
        ServiceQuery.from_sdk(offset=value)
    with pytest.raises(InvalidQueryError, match="whole number"):
        ServiceQuery.from_sdk(limit=value)


def test_it_rejects_unknown_sdk_parameters() -> None:
    with pytest.raises(TypeError):
        ServiceQuery.from_sdk(status="running")  # type: ignore[call-arg]


def test_it_accepts_a_status_the_api_may_add_later() -> None:
    query = ServiceQuery(status="upgrading", infer_type="async_real-time")

    assert ("status", "upgrading") in query.to_params()


def test_it_replaces_the_page_and_keeps_the_filters() -> None:
    query = ServiceQuery(status="failed", offset=9, limit=3)

    assert query.with_page(2, 50) == ServiceQuery(status="failed", offset=2, limit=50)
    assert query.offset == 9


def test_it_validates_the_new_page() -> None:
    with pytest.raises(InvalidQueryError, match="limit"):
        ServiceQuery().with_page(0, 0)


def test_it_offers_every_documented_sort_field() -> None:
    for field in SORT_FIELDS:
        assert ServiceQuery(sort_by=field).to_params() == [("sort_by", field)]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"sort_by": "status"}, "sort_by must be one of publish_at, service_name, transition_at"),
        ({"sort_by": "PUBLISH_AT"}, "sort_by"),
        ({"order": "ascending"}, "order must be one of asc, desc"),
        ({"order": "DESC"}, "order"),
        ({"limit": 0}, "limit must be between 1 and 1000"),
        ({"limit": 1001}, "limit must be between 1 and 1000"),
        ({"limit": True}, "limit must be a whole number"),
        ({"limit": "10"}, "limit must be a whole number"),
        ({"limit": 10.0}, "limit must be a whole number"),
        ({"offset": -1}, "offset must be at least 0"),
        ({"offset": False}, "offset must be a whole number"),
        ({"offset": None}, "offset must be a whole number"),
        ({"offset": "1"}, "offset must be a whole number"),
        ({"service_name": ""}, "service_name must not be empty"),
        ({"service_id": "  "}, "service_id must not be empty"),
        ({"model_id": "x" * 257}, "model_id is 257 characters long; at most 256"),
        ({"workspace_id": 0}, "workspace_id must be text"),
        ({"service_name": "a\nb"}, "control characters"),
        ({"service_name": "a\x00b"}, "control characters"),
        ({"service_name": "a\x7fb"}, "control characters"),
        ({"service_name": "a\x85b"}, "control characters"),
        ({"status": "Running"}, "status 'Running' is not a possible value"),
        ({"status": "run ning"}, "status"),
        ({"status": "-running"}, "status"),
        ({"status": "r" * 33}, "status"),
        ({"infer_type": "real time"}, "infer_type"),
        ({"infer_type": "REAL_TIME"}, "infer_type"),
        ({"infer_type": "1batch"}, "infer_type"),
    ],
)
def test_it_rejects_bad_parameters_before_any_request(fields: dict, problem: str) -> None:
    with pytest.raises(InvalidQueryError, match=problem):
        ServiceQuery(**fields)


def test_it_raises_an_error_that_is_both_a_modelarts_error_and_a_value_error() -> None:
    with pytest.raises(InvalidQueryError) as caught:
        ServiceQuery(limit=0)

    assert isinstance(caught.value, ModelArtsError)
    assert isinstance(caught.value, ValueError)


def test_it_accepts_the_limits_of_every_range() -> None:
    query = ServiceQuery(limit=1000, offset=0, service_name="n" * 256, status="r" * 32)

    assert query.limit == 1000
    assert ServiceQuery(limit=1).limit == 1


def test_it_accepts_names_with_spaces_and_non_ascii_letters() -> None:
    query = ServiceQuery(service_name="démo svc/1&2")

    assert query.to_params() == [("service_name", "démo svc/1&2")]


def test_it_cannot_be_changed_after_validation() -> None:
    query = ServiceQuery(limit=5)

    with pytest.raises(AttributeError):
        query.limit = 0  # type: ignore[misc]
