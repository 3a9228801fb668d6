"""Records of ModelArts' per-service APIs (API.md §2), parsed leniently like the list's.

ShowService (`GET .../services/{id}`), its event log (`/events`), its monitoring figures
(`/monitor`) and its deployment history (`/logs`). The documented types drift as the list's do
(numbers as strings, fields left out), so an unreadable field becomes None or "", and only a body
that is not the documented object at all raises ResponseError.

`envs` (a model's environment variables) routinely hold users' secrets: database passwords,
access keys. Their values are dropped while parsing; records keep the names only, and the raw
body a ServiceDetail keeps has every value replaced by ENV_VALUE_HIDDEN.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from .errors import InvalidQueryError, ResponseError
from .records import (
    Schedule,
    _count,
    _flag,
    _kind,
    _progress,
    _schedule,
    _text,
    _timestamp,
)

ENV_VALUE_HIDDEN = "[hidden]"
EVENT_TYPES = ("normal", "abnormal")
UPDATE_RESULTS = ("SUCCESS", "FAIL", "RUNNING")
# Documented default of the events API's limit; no maximum is documented, so none is assumed
# beyond the one the list API is known to accept.
EVENTS_LIMIT = 1000
_ORDERS = ("asc", "desc")
# Plain ASCII decimals only: float() alone would also take "1_000", "nan" and "infinity".
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", re.ASCII)


@dataclass(frozen=True)
class ModelConfig:
    """One model a service runs (config[] of ShowService and of each update log)."""

    model_id: str
    model_name: str
    model_version: str
    specification: str  # a flavor such as modelarts.vm.cpu.2u, or "custom"
    weight: int | None  # share of the traffic, in percent
    instance_count: int | None  # the instances asked for
    status: str  # ready / notReady, as sent
    scaling: bool | None
    cluster_id: str
    pool_name: str
    custom_spec: dict = field(default_factory=dict)  # cpu, memory, gpu_p4 of a "custom" flavor
    env_names: tuple[str, ...] = ()  # names only: the values are never read into a record

    @classmethod
    def from_json(cls, item: dict) -> ModelConfig:
        custom_spec = item.get("custom_spec")
        return cls(
            model_id=_text(item.get("model_id")),
            model_name=_text(item.get("model_name")),
            model_version=_text(item.get("model_version")),
            specification=_text(item.get("specification")),
            weight=_count(item.get("weight")),
            instance_count=_count(item.get("instance_count")),
            status=_text(item.get("status")),
            scaling=_flag(item.get("scaling")),
            cluster_id=_text(item.get("cluster_id")),
            pool_name=_text(item.get("pool_name")),
            custom_spec=copy.deepcopy(custom_spec) if isinstance(custom_spec, dict) else {},
            env_names=env_names(item.get("envs")),
        )


@dataclass(frozen=True)
class ServiceDetail:
    """ShowService: the service's state, why it failed, and the models it runs."""

    service_id: str
    service_name: str
    description: str
    status: str
    infer_type: str
    workspace_id: str
    progress: int | None
    error_msg: str  # why the service failed; "" unless it did
    access_address: str  # where a deployed real-time service is called
    cluster_id: str
    pool_name: str
    config: tuple[ModelConfig, ...]
    schedule: tuple[Schedule, ...]
    publish_at: datetime | None
    update_time: datetime | None
    transition_at: datetime | None
    due_time: datetime | None
    invocation_times: int | None
    failed_times: int | None
    is_shared: bool | None
    is_free: bool | None
    raw: dict = field(default_factory=dict, repr=False)  # the body, env values hidden

    @classmethod
    def from_json(cls, body: object, *, owned: bool = False) -> ServiceDetail:
        """owned=True: nothing else holds the body, so it is scrubbed in place, not copied."""
        if not isinstance(body, dict):
            raise ResponseError(f"the service detail must be a JSON object, not {_kind(body)}")
        service_id = body.get("service_id")
        if not isinstance(service_id, str) or not service_id.strip():
            raise ResponseError(f"the service detail has no usable service_id ({service_id!r})")
        raw = hide_env_values(body if owned else copy.deepcopy(body))
        return cls(
            service_id=service_id,
            service_name=_text(raw.get("service_name")),
            description=_text(raw.get("description")),
            status=_text(raw.get("status")),
            infer_type=_text(raw.get("infer_type")),
            workspace_id=_text(raw.get("workspace_id")),
            progress=_progress(raw.get("progress")),
            error_msg=_text(raw.get("error_msg")),
            access_address=_text(raw.get("access_address")),
            cluster_id=_text(raw.get("cluster_id")),
            pool_name=_text(raw.get("pool_name")),
            config=_configs(raw.get("config")),
            schedule=_schedule(raw.get("schedule")),
            publish_at=_timestamp(raw.get("publish_at")),
            update_time=_timestamp(raw.get("update_time")),
            transition_at=_timestamp(raw.get("transition_at")),
            due_time=_timestamp(raw.get("due_time")),
            invocation_times=_count(raw.get("invocation_times")),
            failed_times=_count(raw.get("failed_times")),
            is_shared=_flag(raw.get("is_shared")),
            is_free=_flag(raw.get("is_free")),
            raw=raw,
        )

    @property
    def env_names(self) -> tuple[str, ...]:
        """Every model's environment variable names, each once, in order."""
        return tuple(dict.fromkeys(name for model in self.config for name in model.env_names))


@dataclass(frozen=True)
class ServiceEvent:
    """One entry of ModelArts' own event log of a service."""

    event_type: str  # normal / abnormal, as sent
    event_info: str
    occur_time: datetime | None

    @property
    def is_abnormal(self) -> bool:
        return self.event_type == "abnormal"

    @classmethod
    def from_json(cls, item: dict) -> ServiceEvent:
        return cls(
            event_type=_text(item.get("event_type")),
            event_info=_text(item.get("event_info")),
            occur_time=_timestamp(item.get("occur_time")),
        )


@dataclass(frozen=True)
class EventPage:
    """One response of the events API: a page of events, newest first unless asked otherwise."""

    service_id: str
    service_name: str
    total_count: int  # events matching the filters, ignoring paging
    count: int
    events: tuple[ServiceEvent, ...]
    rejected: tuple[str, ...] = ()  # events that were not objects, described

    @property
    def complete(self) -> bool:
        """True when this page holds every matching event."""
        return not self.rejected and len(self.events) >= self.total_count

    @classmethod
    def from_json(cls, body: object) -> EventPage:
        if not isinstance(body, dict):
            raise ResponseError(f"the event log must be a JSON object, not {_kind(body)}")
        items = body.get("events")
        if not isinstance(items, list):
            raise ResponseError(f"'events' must be a list, not {_kind(items)}")
        events, rejected = [], []
        for index, item in enumerate(items):
            if isinstance(item, dict):
                events.append(ServiceEvent.from_json(item))
            else:
                rejected.append(f"events[{index}]: an event must be an object, not {_kind(item)}")
        count = _count(body.get("count"))
        total_count = _count(body.get("total_count"))
        return cls(
            service_id=_text(body.get("service_id")),
            service_name=_text(body.get("service_name")),
            # Both are left out by some answers; what arrived is then the best count there is.
            total_count=len(items) if total_count is None else total_count,
            count=len(items) if count is None else count,
            events=tuple(events),
            rejected=tuple(rejected),
        )


@dataclass(frozen=True)
class ModelMonitor:
    """Resource use of one model of a service (monitors[] of the monitor API).

    Usage and totals are documented as CPU cores, memory in MB and GPU/NPU cards; each is None
    when left out (a CPU model sends no GPU figures).
    """

    model_id: str
    model_name: str
    model_version: str
    running_instances: int | None  # model_running_instance_count
    desired_instances: int | None  # model_instance_count
    invocation_times: int | None
    failed_times: int | None
    cpu_core_usage: float | None
    cpu_core_total: float | None
    cpu_memory_usage: float | None  # MB
    cpu_memory_total: float | None  # MB
    gpu_usage: float | None
    gpu_total: float | None
    gpu_memory_usage: float | None
    gpu_memory_total: float | None
    npu_usage: float | None
    npu_total: float | None
    npu_memory_usage: float | None
    npu_memory_total: float | None
    node_id: str  # edge services only
    node_name: str

    @classmethod
    def from_json(cls, item: dict) -> ModelMonitor:
        numbers = {name: _number(item.get(name)) for name in _RESOURCE_FIELDS}
        return cls(
            model_id=_text(item.get("model_id")),
            model_name=_text(item.get("model_name")),
            model_version=_text(item.get("model_version")),
            running_instances=_count(item.get("model_running_instance_count")),
            desired_instances=_count(item.get("model_instance_count")),
            invocation_times=_count(item.get("invocation_times")),
            failed_times=_count(item.get("failed_times")),
            node_id=_text(item.get("node_id")),
            node_name=_text(item.get("node_name")),
            **numbers,
        )


_RESOURCE_FIELDS = tuple(
    f"{resource}_{measure}"
    for resource in ("cpu_core", "cpu_memory", "gpu", "gpu_memory", "npu", "npu_memory")
    for measure in ("usage", "total")
)


@dataclass(frozen=True)
class Monitor:
    """The monitor API: instances running against those asked for, load, and each model's use."""

    service_id: str
    service_name: str
    running_instances: int | None  # service_running_instance_count
    desired_instances: int | None  # service_instance_count
    requests_per_minute: int | None  # req_count_per_min
    models: tuple[ModelMonitor, ...]

    @property
    def below_desired(self) -> bool:
        """Fewer instances run than were asked for (False when either count is unknown)."""
        if self.running_instances is None or self.desired_instances is None:
            return False
        return self.running_instances < self.desired_instances

    @classmethod
    def from_json(cls, body: object) -> Monitor:
        if not isinstance(body, dict):
            raise ResponseError(f"the monitoring answer must be a JSON object, not {_kind(body)}")
        items = body.get("monitors", [])
        if not isinstance(items, list):
            raise ResponseError(f"'monitors' must be a list, not {_kind(items)}")
        return cls(
            service_id=_text(body.get("service_id")),
            service_name=_text(body.get("service_name")),
            running_instances=_count(body.get("service_running_instance_count")),
            desired_instances=_count(body.get("service_instance_count")),
            requests_per_minute=_count(body.get("req_count_per_min")),
            models=tuple(ModelMonitor.from_json(item) for item in items if isinstance(item, dict)),
        )


@dataclass(frozen=True)
class NodeResult:
    """How one node fared in an update (result_detail[] of an update log)."""

    result: bool | None
    node_id: str
    node_name: str
    operation: str  # deploy / delete

    @classmethod
    def from_json(cls, item: dict) -> NodeResult:
        return cls(
            result=_flag(item.get("result")),
            node_id=_text(item.get("node_id")),
            node_name=_text(item.get("node_name")),
            operation=_text(item.get("operation")),
        )


@dataclass(frozen=True)
class UpdateLog:
    """One deployment or update of a service and how it ended."""

    update_time: datetime | None
    result: str  # SUCCESS / FAIL / RUNNING, as sent
    config: tuple[ModelConfig, ...]
    success_num: int | None
    failed_num: int | None
    result_detail: tuple[NodeResult, ...]
    cluster_id: str

    @classmethod
    def from_json(cls, item: dict) -> UpdateLog:
        details = item.get("result_detail")
        return cls(
            update_time=_timestamp(item.get("update_time")),
            result=_text(item.get("result")),
            config=_configs(item.get("config")),
            success_num=_count(item.get("success_num")),
            failed_num=_count(item.get("failed_num")),
            result_detail=tuple(
                NodeResult.from_json(detail)
                for detail in (details if isinstance(details, list) else ())
                if isinstance(detail, dict)
            ),
            cluster_id=_text(item.get("cluster_id")),
        )


@dataclass(frozen=True)
class UpdateLogs:
    """The deployment history of a service, in the order the API sent it."""

    service_id: str
    service_name: str
    logs: tuple[UpdateLog, ...]

    @classmethod
    def from_json(cls, body: object) -> UpdateLogs:
        if not isinstance(body, dict):
            raise ResponseError(f"the update logs must be a JSON object, not {_kind(body)}")
        items = body.get("logs")
        if not isinstance(items, list):
            raise ResponseError(f"'logs' must be a list, not {_kind(items)}")
        return cls(
            service_id=_text(body.get("service_id")),
            service_name=_text(body.get("service_name")),
            logs=tuple(UpdateLog.from_json(item) for item in items if isinstance(item, dict)),
        )


def env_names(envs: object) -> tuple[str, ...]:
    """The variable names of an `envs` value; its values are never looked at.

    Documented as an object of name → value; a list of {"name": ..., "value": ...} (the shape
    other Huawei APIs use) is read too.
    """
    if isinstance(envs, dict):
        return tuple(name for name in envs if isinstance(name, str))
    if isinstance(envs, list):
        return tuple(
            entry["name"]
            for entry in envs
            if isinstance(entry, dict) and isinstance(entry.get("name"), str)
        )
    return ()


def hide_env_values(body: dict) -> dict:
    """body, changed in place: every `envs` value at any depth replaced by ENV_VALUE_HIDDEN.

    Walks iteratively: a body deep enough to exhaust the stack still parses as JSON.
    """
    pending: list[object] = [body]
    while pending:
        value = pending.pop()
        children: Iterable[object]
        if isinstance(value, dict):
            if "envs" in value:
                value["envs"] = _hidden(value["envs"])
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        pending.extend(child for child in children if isinstance(child, dict | list))
    return body


def _hidden(envs: object) -> object:
    if isinstance(envs, dict):
        return dict.fromkeys(envs, ENV_VALUE_HIDDEN)
    if isinstance(envs, list):
        return [
            {"name": entry["name"], "value": ENV_VALUE_HIDDEN}
            for entry in envs
            if isinstance(entry, dict) and isinstance(entry.get("name"), str)
        ]
    # A shape nobody documents (a string of "A=1;B=2"?) cannot be split safely: hide it whole.
    return ENV_VALUE_HIDDEN


def event_params(
    *,
    event_type: str | None,
    start_time: datetime | None,
    end_time: datetime | None,
    offset: int,
    limit: int,
    order: str | None,
) -> list[tuple[str, str]]:
    """The events API's query pairs, sorted by name (AK/SK signing's order); checked first."""
    if event_type is not None and event_type not in EVENT_TYPES:
        raise InvalidQueryError(f"event_type must be normal or abnormal, not {event_type!r}")
    if order is not None and order not in _ORDERS:
        raise InvalidQueryError(f"order must be asc or desc, not {order!r}")
    _check_whole("offset", offset, 0, None)
    _check_whole("limit", limit, 1, EVENTS_LIMIT)
    params = [("offset", str(offset)), ("limit", str(limit))]
    for name, moment in (("start_time", start_time), ("end_time", end_time)):
        if moment is not None:
            params.append((name, str(_epoch_ms(name, moment))))
    if start_time is not None and end_time is not None and end_time < start_time:
        raise InvalidQueryError("end_time must not be before start_time")
    if event_type is not None:
        params.append(("event_type", event_type))
    if order is not None:
        params.append(("order", order))
    return sorted(params)


def _check_whole(name: str, value: object, minimum: int, maximum: int | None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidQueryError(f"{name} must be a whole number, not {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise InvalidQueryError(f"{name} must be {bounds}, not {value}")


def _epoch_ms(name: str, moment: object) -> int:
    if not isinstance(moment, datetime):
        raise InvalidQueryError(f"{name} must be a datetime, not {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        # A naive time would be read in the server's zone, or ours: neither is knowable.
        raise InvalidQueryError(f"{name} must be timezone-aware, e.g. datetime.now(UTC)")
    return math.floor(moment.timestamp() * 1000)


def _configs(value: object) -> tuple[ModelConfig, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(ModelConfig.from_json(item) for item in value if isinstance(item, dict))


def _number(value: object) -> float | None:
    """A finite number >= 0 from an int, a float or a numeric string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        return float(text) if _DECIMAL.fullmatch(text) else None
    if not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None
