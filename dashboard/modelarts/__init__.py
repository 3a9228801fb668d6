"""Client for the Huawei Cloud ModelArts service-list API; usable without Django."""

from __future__ import annotations

from .auth import AkSkAuth, IamPasswordAuth, NoAuth, TokenAuth
from .client import ModelArtsClient
from .errors import (
    APIError,
    AuthError,
    DeadlineError,
    InvalidQueryError,
    ModelArtsError,
    ResponseError,
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
    "KNOWN_INFER_TYPES",
    "KNOWN_STATUSES",
    "SORT_FIELDS",
    "APIError",
    "AkSkAuth",
    "AuthError",
    "DeadlineError",
    "IamPasswordAuth",
    "InvalidQueryError",
    "ModelArtsClient",
    "ModelArtsError",
    "NoAuth",
    "ResponseError",
    "RetryPolicy",
    "Schedule",
    "ServicePage",
    "ServiceQuery",
    "ServiceRecord",
    "Snapshot",
    "SignatureError",
    "TokenAuth",
    "TransportError",
]
