"""The client's exceptions, and the tolerant reading of ModelArts error bodies."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping

# Pairs tried in order, as huaweicloudsdkcore's DefaultExceptionHandler does; the second one is
# the key spelling of the 2021 Huawei docs (API.md §1.6).
_CODE_MESSAGE_KEYS = (
    ("error_code", "error_msg"),
    ("error_code", "error_message"),
    ("errorCode", "errorMsg"),
    ("code", "message"),
)
_MESSAGE_KEYS = ("error_msg", "error_message", "errorMsg", "message")
# Deep enough for IAM's {"error": {...}}; bounded so a hostile body cannot recurse forever.
_MAX_DEPTH = 3
# ShowService and the other per-service APIs' "service does not exist" (API.md §1.6).
SERVICE_NOT_FOUND = "ModelArts.3502"
EXCERPT_CHARS = 200
_EXCERPT_SOURCE_CHARS = 64 * 1024


class ModelArtsError(Exception):
    """Base of everything the ModelArts client raises."""

    def with_note(self, note: str) -> ModelArtsError:
        """The same error with what the client did about it, e.g. how often it retried."""
        return type(self)(f"{self} — {note}")


class InvalidQueryError(ModelArtsError, ValueError):
    """A parameter was rejected before any request was sent."""


class TransportError(ModelArtsError):
    """The API could not be reached: connection refused, DNS, TLS, timeout."""


class DeadlineError(TransportError):
    """The poll ran out of time before the next page could start, though nothing failed."""


class SignatureError(ModelArtsError, ValueError):
    """An AK/SK signature cannot be made or checked: a missing header, a malformed value."""


class ResponseError(ModelArtsError):
    """The API answered 2xx but the body cannot be used."""


class APIError(ModelArtsError):
    """The API (or a gateway in front of it) answered with an error status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None = None,
        *,
        note: str = "",
        host: str = "",
    ):
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.note = note
        self.host = host  # which endpoint answered: with several sources, the first question
        super().__init__(status, code, message, request_id)

    def __str__(self) -> str:
        details = [] if self.code == f"HTTP {self.status}" else [f"HTTP {self.status}"]
        if self.host:
            details.append(f"from {self.host}")
        if self.request_id:
            details.append(f"request {self.request_id}")
        suffix = f" ({', '.join(details)})" if details else ""
        note = f" — {self.note}" if self.note else ""
        return f"{self.code}: {self.message}{suffix}{note}"

    def with_note(self, note: str) -> APIError:
        note = f"{self.note}; {note}" if self.note else note
        return type(self)(
            self.status, self.code, self.message, self.request_id, note=note, host=self.host
        )

    @classmethod
    def from_body(cls, status: int, text: str, headers: Mapping[str, str]) -> APIError:
        """Read whatever error shape came back; never fails, whatever the body."""
        body = _json_or_none(text)
        found = _find_error(body, _MAX_DEPTH) if isinstance(body, dict) else None
        code, message = found or (None, None)
        if not message:
            # A bare code is still worth showing; only a body we could not read is quoted.
            message = "no message given" if code else excerpt(text) or "empty response body"
        return cls(
            status=status,
            code=code or f"HTTP {status}",
            message=message,
            request_id=_header(headers, "X-Request-Id") or _body_request_id(body),
        )


class AuthError(APIError):
    """The credentials were refused: IAM would not issue a token (wrong password, unknown user
    or project, locked account), or ModelArts answered 401 to the token or signature sent."""


class ServiceNotFound(APIError):
    """ModelArts.3502: the service asked for does not exist (deleted, or never in this project).

    Raised by the per-service calls only; service_id is the ID that was asked for.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None = None,
        *,
        note: str = "",
        host: str = "",
        service_id: str = "",
    ):
        super().__init__(status, code, message, request_id, note=note, host=host)
        self.service_id = service_id

    def with_note(self, note: str) -> ServiceNotFound:
        note = f"{self.note}; {note}" if self.note else note
        return type(self)(
            self.status,
            self.code,
            self.message,
            self.request_id,
            note=note,
            host=self.host,
            service_id=self.service_id,
        )


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The readable start of a body that is not JSON, e.g. a proxy's HTML error page."""
    # Only the head is read: the tag regexes would crawl through a multi-megabyte body.
    text = text[:_EXCERPT_SOURCE_CHARS]
    text = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", text)
    text = html.unescape(re.sub(r"<[^>]*>", " ", text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_or_none(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: a body nested thousands deep
        return None


def _find_error(body: dict, depth: int) -> tuple[str | None, str] | None:
    for code_key, message_key in _CODE_MESSAGE_KEYS:
        if code_key in body and message_key in body:
            code, message = _as_code(body[code_key]), _as_text(body[message_key])
            if code or message:
                return code, message
    if depth > 0:
        for value in body.values():
            if isinstance(value, dict) and (found := _find_error(value, depth - 1)):
                return found
    for key in _MESSAGE_KEYS:
        if message := _as_text(body.get(key)):
            return None, message
    return None


def _as_text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _as_code(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    # Keystone-style bodies put the HTTP status in "code" as a number.
    if isinstance(value, int) and not isinstance(value, bool):
        return f"HTTP {value}"
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted and value.strip():
            return value.strip()
    return None


def _body_request_id(body: object) -> str | None:
    if isinstance(body, dict):
        value = body.get("request_id")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
