"""Ways to authenticate a request: each adds its headers to the request the client built."""

from __future__ import annotations

from typing import Protocol

from .errors import InvalidQueryError

# Headers whose values are credentials: the client scrubs them from every error message.
SECRET_HEADERS = ("X-Auth-Token", "Authorization", "X-Security-Token")


class Auth(Protocol):
    def headers_for(self, method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
        """The headers to send: the given ones plus the credentials.

        Gets the exact URL that will be sent because AK/SK signing covers path and query.
        """
        ...


class TokenAuth:
    """A project-scoped IAM token, sent as X-Auth-Token (API.md §3a)."""

    __slots__ = ("_token",)

    def __init__(self, token: str):
        if not isinstance(token, str) or not token.strip():
            raise InvalidQueryError("the IAM token is empty; pass the X-Subject-Token value")
        # A newline in a header value would let the token smuggle in other headers.
        if any(char in token for char in "\r\n\0"):
            raise InvalidQueryError("the IAM token contains a line break or NUL; is it pasted?")
        self._token = token.strip()

    def headers_for(self, method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
        return {**headers, "X-Auth-Token": self._token}

    def __repr__(self) -> str:
        return "TokenAuth(token=<hidden>)"


class NoAuth:
    """No credentials at all: for the simulator started with --auth none."""

    def headers_for(self, method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
        return dict(headers)
