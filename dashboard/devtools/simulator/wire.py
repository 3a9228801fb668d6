"""What the simulator puts on the wire: replies and the error bodies of each producer.

Three producers answer a real ModelArts client, each with its own error shape (API.md §1.6):
the ModelArts backend, Huawei's API gateway in front of it, and IAM (Keystone).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

KEYSTONE_TITLES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


def encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass
class Reply:
    """One answer, and how to deliver it (faults bend the delivery, not only the body)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    hold: float | None = None  # wait this long, then hang up without a word
    truncate_to: int | None = None  # send this many body bytes of the promised length, hang up

    @classmethod
    def json(cls, status: int, body: Any, **headers: str) -> Reply:
        return cls(status, encode(body), headers=headers)


class ApiError(Exception):
    """An error answer: HTTP status plus the ModelArts (or gateway) error body."""

    def __init__(self, status: int, code: str, message: str, *, gateway: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.gateway = status, code, message, gateway

    def body(self, request_id: str = "") -> dict[str, str]:
        body = {"error_code": self.code, "error_msg": self.message}
        # The gateway names the request in its body too; the backend only in X-Request-Id.
        if self.gateway:
            body["request_id"] = request_id
        return body

    def reply(self, request_id: str) -> Reply:
        return Reply.json(self.status, self.body(request_id))


class KeystoneError(Exception):
    """An IAM error answer, in Keystone's nested shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    def reply(self, request_id: str) -> Reply:
        title = KEYSTONE_TITLES.get(self.status, "Error")
        return Reply.json(
            self.status, {"error": {"code": self.status, "message": self.message, "title": title}}
        )
