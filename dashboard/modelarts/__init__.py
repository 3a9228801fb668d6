"""Client for the Huawei Cloud ModelArts service-list and per-service APIs; usable without
Django."""

from __future__ import annotations

from .auth import AkSkAuth, IamPasswordAuth, NoAuth, TokenAuth
from .client import ModelArtsClient
from .detail import (
    ENV_VALUE_HIDDEN,
    EVENT_TYPES,
    EventPage,
    ModelConfig,
    ModelMonitor,
    Monitor,
    NodeResult,
    ServiceDetail,
    ServiceEvent,
    UpdateLog,
    UpdateLogs,
)
from .errors import (
    APIError,
    AuthError,
    DeadlineError,
    InvalidQueryError,
    ModelArtsError,
    ResponseError,
    ServiceNotFound,
    SignatureError,
    TransportError,
)
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
from .retry import RetryPolicy

__all__ = [
    "ENV_VALUE_HIDDEN",
    "EVENT_TYPES",
    "KNOWN_INFER_TYPES",
    "KNOWN_STATUSES",
    "SORT_FIELDS",
    "APIError",
    "AkSkAuth",
    "AuthError",
    "DeadlineError",
    "EventPage",
    "IamPasswordAuth",
    "InvalidQueryError",
    "ModelArtsClient",
    "ModelArtsError",
    "ModelConfig",
    "ModelMonitor",
    "Monitor",
    "NoAuth",
    "NodeResult",
    "ResponseError",
    "RetryPolicy",
    "Schedule",
    "ServiceDetail",
    "ServiceEvent",
    "ServiceNotFound",
    "ServicePage",
    "ServiceQuery",
    "ServiceRecord",
    "Snapshot",
    "SignatureError",
    "TokenAuth",
    "TransportError",
    "UpdateLog",
    "UpdateLogs",
]
