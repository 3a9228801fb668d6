"""Client for the Huawei Cloud ModelArts service-list API; usable without Django."""

from __future__ import annotations

from .auth import NoAuth, TokenAuth
from .client import ModelArtsClient
from .errors import APIError, InvalidQueryError, ModelArtsError, ResponseError, TransportError
from .query import ServiceQuery
from .records import (
    KNOWN_INFER_TYPES,
    KNOWN_STATUSES,
    SORT_FIELDS,
    Schedule,
    ServicePage,
    ServiceRecord,
    Snapshot,
)

__all__ = [
    "KNOWN_INFER_TYPES",
    "KNOWN_STATUSES",
    "SORT_FIELDS",
    "APIError",
    "InvalidQueryError",
    "ModelArtsClient",
    "ModelArtsError",
    "NoAuth",
    "ResponseError",
    "Schedule",
    "ServicePage",
    "ServiceQuery",
    "ServiceRecord",
    "Snapshot",
    "TokenAuth",
    "TransportError",
]
