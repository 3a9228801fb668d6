"""A polled service as the service table stores it: the API's record mapped to a compact row.

A poll holds every service of its snapshot until the last page is in (one transaction per
snapshot), so at 100,000 services the form matters: a tuple of column values with the raw item
as JSON text takes a fraction of a ServiceRecord and its dict.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from dashboard.modelarts import ServiceRecord
from dashboard.models import (
    Service,
)
from dashboard.statuses import severity

# The columns a poll sets from the API's item, in the order ServiceRow.state holds them.
STATE_COLUMNS = (
    "service_name", "description", "tenant", "project", "owner", "publish_at", "infer_type",
    "workspace_id", "status", "progress", "invocation_times", "failed_times", "is_shared",
    "shared_count", "schedule", "due_time", "start_time", "finished_time", "operation_time",
    "transition_at", "is_opened_sample_collection", "is_free", "additional_properties", "raw",
    "fingerprint", "severity", "failure_rate",
)  # fmt: skip

_STATUS, _PROGRESS, _CALLS, _FAILURES, _TRANSITION = (
    STATE_COLUMNS.index(name)
    for name in ("status", "progress", "invocation_times", "failed_times", "transition_at")
)

# Anyone who can create a service writes these strings: columns keep what fits (the raw item
# keeps everything), so one 10,000-character name cannot fail a whole poll.
_LIMITS = {
    name: Service._meta.get_field(name).max_length
    for name in (
        "service_name", "tenant", "project", "owner", "infer_type", "workspace_id", "status"
    )
}  # fmt: skip

_EMPTY_LIST, _EMPTY_OBJECT = "[]", "{}"


class ServiceRow(NamedTuple):
    """One service of a snapshot: its id, fingerprint and STATE_COLUMNS' values.

    state is None for a service the table already holds exactly so (see RowMaker).
    """

    service_id: str
    fingerprint: str
    state: tuple

    @property
    def status(self) -> str:
        return self.state[_STATUS]

    @property
    def transition_at(self) -> datetime | None:
        return self.state[_TRANSITION]

    @property
    def counters(self) -> tuple[int | None, int | None]:
        return self.state[_CALLS], self.state[_FAILURES]

    @property
    def observed(self) -> tuple:
        """What a history sample records: a change to any of these is history."""
        return self.state[_STATUS], self.state[_PROGRESS], *self.counters


class RowMaker:
    """Makes each record's row; a service the table already holds with the same fingerprint
    becomes a stand-in without state, made before the poll: in a mostly unchanged fleet the
    snapshot then costs little more than the ids, instead of every service's columns and text.

    stored: service_id → fingerprint of the table's live rows, read under the poll's claim.
    """

    def __init__(self, stored: Iterable[tuple[str, str]]):
        self._same = {sid: ServiceRow(sid, fingerprint, None) for sid, fingerprint in stored}

    def __call__(self, record: ServiceRecord) -> ServiceRow:
        fingerprint, stored = _fingerprinted(record.raw)
        same = self._same.get(record.service_id)
        if same is not None and same.fingerprint == fingerprint:
            return same
        return _row(record, fingerprint, stored)


def _row(record: ServiceRecord, fingerprint: str, stored: str) -> ServiceRow:
    schedule = [vars(rule) for rule in record.schedule]
    properties = record.additional_properties
    state = (
        record.service_name[: _LIMITS["service_name"]], record.description,
        _shared(record.tenant, "tenant"), _shared(record.project, "project"),
        _shared(record.owner, "owner"), record.publish_at,
        _shared(record.infer_type, "infer_type"), _shared(record.workspace_id, "workspace_id"),
        _shared(record.status, "status"), record.progress, record.invocation_times,
        record.failed_times, record.is_shared, record.shared_count,
        json.dumps(schedule) if schedule else _EMPTY_LIST,
        record.due_time, record.start_time, record.finished_time, record.operation_time,
        record.transition_at, record.is_opened_sample_collection, record.is_free,
        json.dumps(properties) if properties else _EMPTY_OBJECT,
        stored, fingerprint, severity(record.status),
        _rate(record.failed_times, record.invocation_times),
    )  # fmt: skip
    return ServiceRow(record.service_id, fingerprint, state)


def _fingerprinted(item: dict) -> tuple[str, str]:
    """The item's fingerprint, and its text as stored."""
    canonical, stored = _encoded(item)
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest(), stored


def _encoded(item: dict) -> tuple[str, str]:
    """The item as hashed (sorted keys, no operation_time) and as stored (with it, last).

    operation_time is "the time of the current request": it differs on every poll, so it stays
    out of the fingerprint. One encoding serves both, which halves the cost of the second.
    """
    if "operation_time" not in item:
        text = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
        return text, text
    rest = {key: value for key, value in item.items() if key != "operation_time"}
    canonical = json.dumps(rest, sort_keys=True, separators=(",", ":"), default=str)
    value = item["operation_time"]
    # Epoch milliseconds, almost always: an int is its own JSON.
    encoded = str(value) if type(value) is int else json.dumps(value, default=str)
    member = '"operation_time":' + encoded
    return canonical, canonical[:-1] + ("," if rest else "") + member + "}"


def _shared(value: str, column: str) -> str:
    """A short text that repeats across the fleet (tenant, owner, status…): one string shared
    by every row instead of one per service."""
    return sys.intern(value[: _LIMITS[column]])


def _rate(failures: int | None, calls: int | None) -> float | None:
    if not calls or failures is None:
        return None
    return failures / calls
