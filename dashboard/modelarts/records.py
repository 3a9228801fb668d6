"""Records of the ModelArts service list (GET /v1/{project_id}/services), parsed leniently.

The documented types drift between doc versions and real bodies (API.md §5): numbers arrive as
strings, booleans as "true", workspace_id as a number. Parsing therefore never fails on a field
it cannot read (it becomes None or ""); only a missing service_id makes an item unusable.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from .errors import ResponseError

# Worst first, so sorting by this order puts what needs attention at the top. The API treats the
# set as open (the last four arrived in 2024), so anything else is kept as sent, not rejected.
KNOWN_STATUSES = (
    "failed",
    "concerning",
    "deploying",
    "pending",
    "waiting",
    "running",
    "stopping",
    "deleting",
    "stopped",
    "finished",
)
KNOWN_INFER_TYPES = ("real-time", "batch", "edge")
SORT_FIELDS = ("publish_at", "service_name", "transition_at")

Kept = TypeVar("Kept")
_NUMERIC = re.compile(r"([0-9]+)(?:\.0*)?", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True)
class Schedule:
    """An auto-stop rule: type is only ever "stop"; time_unit is DAYS, HOURS or MINUTES."""

    type: str
    time_unit: str
    duration: int | None

    @classmethod
    def from_json(cls, item: dict) -> Schedule:
        return cls(
            type=_text(item.get("type")),
            time_unit=_text(item.get("time_unit")),
            duration=_count(item.get("duration")),
        )


@dataclass(frozen=True)
class ServiceRecord:
    """One item of the service list; every documented field, plus the item as sent in raw."""

    service_id: str
    service_name: str
    description: str
    tenant: str
    project: str
    owner: str
    publish_at: datetime | None
    infer_type: str
    workspace_id: str
    status: str
    progress: int | None
    invocation_times: int | None
    failed_times: int | None
    is_shared: bool | None
    shared_count: int | None
    schedule: tuple[Schedule, ...]
    due_time: datetime | None
    start_time: datetime | None
    finished_time: datetime | None
    operation_time: datetime | None
    transition_at: datetime | None
    is_opened_sample_collection: bool | None
    is_free: bool | None
    additional_properties: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, item: object, *, owned: bool = False) -> ServiceRecord:
        """The record of one item; owned=True when nothing else holds the item (the client's
        own parse of a body), so raw keeps it instead of a copy: copying took seconds at 100k.
        """
        if not isinstance(item, dict):
            raise ResponseError(f"a service item must be a JSON object, not {_kind(item)}")
        service_id = item.get("service_id")
        if not isinstance(service_id, str) or not service_id.strip():
            raise ResponseError(f"a service item has no usable service_id ({service_id!r})")
        return cls(
            service_id=service_id,
            service_name=_text(item.get("service_name")),
            description=_text(item.get("description")),
            tenant=_text(item.get("tenant")),
            project=_text(item.get("project")),
            owner=_text(item.get("owner")),
            publish_at=_timestamp(item.get("publish_at")),
            infer_type=_text(item.get("infer_type")),
            workspace_id=_text(item.get("workspace_id")),
            status=_text(item.get("status")),
            progress=_progress(item.get("progress")),
            invocation_times=_count(item.get("invocation_times")),
            failed_times=_count(item.get("failed_times")),
            is_shared=_flag(item.get("is_shared")),
            shared_count=_count(item.get("shared_count")),
            schedule=_schedule(item.get("schedule")),
            due_time=_timestamp(item.get("due_time")),
            start_time=_timestamp(item.get("start_time")),
            finished_time=_timestamp(item.get("finished_time")),
            operation_time=_timestamp(item.get("operation_time")),
            transition_at=_timestamp(item.get("transition_at")),
            is_opened_sample_collection=_flag(item.get("is_opened_sample_collection")),
            is_free=_flag(item.get("is_free")),
            additional_properties=_mapping(item.get("additional_properties"), owned),
            raw=item if owned else copy.deepcopy(item),
        )

    @property
    def is_known_status(self) -> bool:
        return self.status in KNOWN_STATUSES

    @property
    def failure_rate(self) -> float | None:
        """Failed calls per call, or None when there were no calls or the counts are unknown."""
        if self.failed_times is None or not self.invocation_times:
            return None
        return self.failed_times / self.invocation_times


@dataclass(frozen=True)
class ServicePage:
    """One response of the list API."""

    total_count: int
    count: int
    services: tuple[ServiceRecord, ...]
    # Items that could not be read (not an object, no usable service_id), described; one bad
    # item must not hide the others, but the listing they belong to is then incomplete.
    rejected: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, body: object, *, owned: bool = False) -> ServicePage:
        """The page of a decoded body; owned=True: nothing else holds the body (see
        ServiceRecord.from_json)."""
        if not isinstance(body, dict):
            raise ResponseError(f"the service list must be a JSON object, not {_kind(body)}")
        items = body.get("services")
        if not isinstance(items, list):
            raise ResponseError(f"'services' must be a list, not {_kind(items)}")
        total_count = _count(body.get("total_count"))
        if total_count is None:
            raise ResponseError(
                f"'total_count' must be a whole number, not {body.get('total_count')!r}"
            )
        services, rejected = [], []
        for index, item in enumerate(items):
            try:
                services.append(ServiceRecord.from_json(item, owned=owned))
            except ResponseError as exc:
                rejected.append(f"services[{index}]: {exc}")
        count = _count(body.get("count"))
        return cls(
            total_count=total_count,
            count=len(items) if count is None else count,
            services=tuple(services),
            rejected=tuple(rejected),
        )


@dataclass(frozen=True)
class Snapshot(Generic[Kept]):
    """Every page of one listing, merged: unique by service_id, first seen wins, API order.

    services holds ServiceRecords, or what fetch_all's keep made of each.
    """

    services: tuple[Kept, ...]
    total_count: int
    pages: int
    duplicates: int
    complete: bool
    rejected: tuple[str, ...] = ()  # "page N: services[i]: why", for every unreadable item
    totals: tuple[int, ...] = ()  # total_count as each page reported it


def _kind(value: object) -> str:
    if value is None:
        return "missing/null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    # workspace_id arrives as the number 0 in the OTC example.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return ""


def _count(value: object) -> int | None:
    """A non-negative whole number, from an int, an integral float or a numeric string."""
    if type(value) is int:  # the usual case first: this runs for every count of every item
        return value if value >= 0 else None
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        # Plain ASCII digits only: int() alone would also take "1_000" and non-Latin digits.
        match = _NUMERIC.fullmatch(value.strip())
        return int(match[1]) if match else None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        value = int(value)
    if isinstance(value, int) and value >= 0:
        return value
    return None


def _progress(value: object) -> int | None:
    number = _count(value)
    return number if number is not None and number <= 100 else None


def _timestamp(value: object) -> datetime | None:
    """Epoch milliseconds → aware UTC datetime; absurd values become None."""
    ms = _count(value)
    # 0 is what a Java backend sends for an unset long; no service event happened at the epoch.
    if not ms or ms > _MAX_MS:
        return None
    return _EPOCH + timedelta(milliseconds=ms)


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    # is_opened_sample_collection is documented as the string "true"/"false".
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _schedule(value: object) -> tuple[Schedule, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(Schedule.from_json(rule) for rule in value if isinstance(rule, dict))


def _mapping(value: object, owned: bool) -> dict:
    # Values are documented as strings but are nested objects in practice (API.md §1.4).
    if not isinstance(value, dict):
        return {}
    return value if owned else copy.deepcopy(value)
