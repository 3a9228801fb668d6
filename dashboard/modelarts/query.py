"""The validated parameters of one service-list request."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass

from .errors import InvalidQueryError
from .records import SORT_FIELDS

# limit is "max records per page", default 1000, with no documented maximum (API.md §1.2). We
# never ask for more than the default: it is the only page size known to be accepted, and
# fetch_all pages beyond it anyway.
MAX_LIMIT = 1000
MAX_TEXT = 256
ORDERS = ("asc", "desc")
# status and infer_type are open sets (API.md §5): the API added four statuses in 2024. As
# filters we accept anything shaped like an enum value, so a value the API adds later can be
# asked for without a release; a typo simply matches nothing.
_ENUM_LIKE = re.compile(r"[a-z][a-z_-]{0,31}")
_TEXT_FIELDS = ("service_id", "service_name", "model_id", "infer_type", "status", "workspace_id")


@dataclass(frozen=True)
class ServiceQuery:
    """Filters, paging and sorting for GET /v1/{project_id}/services; None means "not sent"."""

    service_id: str | None = None
    service_name: str | None = None
    model_id: str | None = None
    infer_type: str | None = None
    status: str | None = None
    workspace_id: str | None = None
    offset: int = 0
    limit: int | None = None
    sort_by: str | None = None
    order: str | None = None

    def __post_init__(self) -> None:
        for name in _TEXT_FIELDS:
            _check_text(name, getattr(self, name))
        for name in ("infer_type", "status"):
            _check_enum_like(name, getattr(self, name))
        _check_whole(self, "offset", minimum=0, maximum=None)
        if self.limit is not None:
            _check_whole(self, "limit", minimum=1, maximum=MAX_LIMIT)
        _check_choice("sort_by", self.sort_by, SORT_FIELDS)
        _check_choice("order", self.order, ORDERS)

    @classmethod
    def from_sdk(
        cls,
        *,
        service_id: str | None = None,
        service_name: str | None = None,
        infer_type: str | None = None,
        offset: int | str | None = None,
        limit: int | str | None = None,
        service_status: str | None = None,
        sort_by: str | None = None,
        order: str | None = None,
        model_id: str | None = None,
        workspace_id: str | None = None,
    ) -> ServiceQuery:
        """The parameters of the ModelArts SDK's Predictor.get_service_list (API.md §1.8)."""
        return cls(
            service_id=service_id,
            service_name=service_name,
            model_id=model_id,
            infer_type=infer_type,
            status=service_status,
            workspace_id=workspace_id,
            offset=0 if offset is None else _sdk_number("offset", offset),
            limit=None if limit is None else _sdk_number("limit", limit),
            sort_by=sort_by,
            order=order,
        )

    def with_page(self, offset: int, limit: int) -> ServiceQuery:
        return dataclasses.replace(self, offset=offset, limit=limit)

    def to_params(self) -> list[tuple[str, str]]:
        """The query-string pairs to send, sorted by name (the order AK/SK signing needs)."""
        params = [(name, getattr(self, name)) for name in _TEXT_FIELDS + ("sort_by", "order")]
        if self.limit is not None:
            params.append(("limit", str(self.limit)))
        # offset is sent whenever we page, so a page request reads the same in every log line.
        if self.offset or self.limit is not None:
            params.append(("offset", str(self.offset)))
        return sorted((name, value) for name, value in params if value is not None)


def _check_text(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidQueryError(f"{name} must be text, not {type(value).__name__}")
    if not value.strip():
        raise InvalidQueryError(f"{name} must not be empty; leave it out to not filter by it")
    if len(value) > MAX_TEXT:
        raise InvalidQueryError(f"{name} is {len(value)} characters long; at most {MAX_TEXT}")
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise InvalidQueryError(f"{name} must not contain control characters: {value!r}")


def _check_enum_like(name: str, value: str | None) -> None:
    if value is not None and not _ENUM_LIKE.fullmatch(value):
        raise InvalidQueryError(
            f"{name} {value!r} is not a possible value: expected lower-case letters, '-' or '_'"
            " (for example 'running' or 'real-time')"
        )


def _check_whole(query: ServiceQuery, name: str, *, minimum: int, maximum: int | None) -> None:
    value = getattr(query, name)
    # bool is an int subclass; offset=True is a bug, not page 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidQueryError(f"{name} must be a whole number, not {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise InvalidQueryError(f"{name} must be {bounds}, not {value}")


def _check_choice(name: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise InvalidQueryError(f"{name} must be one of {', '.join(choices)}; not {value!r}")


def _sdk_number(name: str, value: object) -> int:
    """The SDK doc passes offset="0"; accept digit strings as well as ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = value.strip() if isinstance(value, str) else ""
    if not (text.isascii() and text.isdigit()):
        raise InvalidQueryError(f"{name} must be a whole number, not {value!r}")
    return int(text)
