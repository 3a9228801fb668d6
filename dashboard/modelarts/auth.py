"""Ways to authenticate a request: each adds its headers to the request the client built."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import requests

from .errors import InvalidQueryError
from .iam import Credentials, IamToken, request_token
from .signer import DATE_HEADER, format_sdk_date, sign_headers
from .transport import check_endpoint, header_value, host_header, seconds

logger = logging.getLogger(__name__)

# Headers whose values are credentials: the client scrubs them from every error message.
SECRET_HEADERS = ("X-Auth-Token", "Authorization", "X-Security-Token")
TOKEN_HEADER = "X-Auth-Token"


class Auth(Protocol):
    def headers_for(self, method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
        """The headers to send: the given ones plus the credentials.

        Gets the exact URL that will be sent because AK/SK signing covers path and query.
        """
        ...


@runtime_checkable
class Renewable(Protocol):
    """An auth that can get fresh credentials; the client asks once when ModelArts sends 401."""

    def invalidate(self, sent_headers: Mapping[str, str] | None = None) -> bool:
        """Forget the credentials sent with a rejected request; True if retrying can help."""
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
        self._token = header_value("the IAM token", token)

    def headers_for(self, method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
        return {**headers, TOKEN_HEADER: self._token}

    def __repr__(self) -> str:
        return "TokenAuth(token=<hidden>)"


class NoAuth:
    """No credentials at all: for the simulator started with --auth none."""

    def headers_for(self, method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
        return dict(headers)

    def __repr__(self) -> str:
        return "NoAuth()"


class AkSkAuth:
    """An access key pair signing each request with SDK-HMAC-SHA256 (API.md §3b).

    security_token makes it a temporary key pair (from an agency or STS); project_id adds
    X-Project-Id. Both headers are added before signing, so they are signed.
    """

    __slots__ = ("_ak", "_sk", "_security_token", "_project_id", "_clock")

    def __init__(
        self,
        ak: str,
        sk: str,
        *,
        security_token: str | None = None,
        project_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._ak = header_value("ak (the access key ID)", ak)
        if not isinstance(sk, str) or not sk.strip():
            raise InvalidQueryError("sk (the secret access key) is empty")
        self._sk = sk.strip()
        self._security_token = _optional_header("security_token", security_token)
        self._project_id = _optional_header("project_id", project_id)
        self._clock = clock

    @property
    def ak(self) -> str:
        return self._ak

    def headers_for(
        self, method: str, url: str, headers: dict[str, str], *, body: bytes = b""
    ) -> dict[str, str]:
        ours = {
            DATE_HEADER: format_sdk_date(self._clock()),
            "Host": host_header(url),
            "X-Project-Id": self._project_id,
            "X-Security-Token": self._security_token,
        }
        replaced = {name.lower() for name in ours} | {"authorization"}
        signing = {name: value for name, value in headers.items() if name.lower() not in replaced}
        signing.update({name: value for name, value in ours.items() if value is not None})
        return sign_headers(method, url, signing, body, self._ak, self._sk)

    def __repr__(self) -> str:
        # The AK names the key pair in the IAM console; it is not a secret, the SK is.
        temporary = ", security_token=<hidden>" if self._security_token else ""
        return f"AkSkAuth(ak={self._ak!r}, sk=<hidden>{temporary})"


class IamPasswordAuth:
    """A project-scoped IAM token obtained with a password, cached and renewed (API.md §3a).

    Tokens live 24 h. One is renewed renew_before seconds before it expires (or at half its
    life if that is shorter), and when the client reports a 401 through invalidate().
    """

    def __init__(
        self,
        iam_endpoint: str,
        domain: str,
        username: str,
        password: str,
        project_name: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        renew_before: float = 3600,
    ):
        if not isinstance(password, str) or not password:
            raise InvalidQueryError("password is empty")
        self._credentials = Credentials(
            iam_endpoint=check_endpoint(
                iam_endpoint,
                name="iam_endpoint",
                example="https://iam.cn-north-4.myhuaweicloud.com",
            ),
            domain=_name("domain", domain),
            username=_name("username", username),
            password=password,
            project_name=_name("project_name", project_name),
        )
        self._session = session
        self._timeout = seconds("timeout", timeout)
        self._renew_before = seconds("renew_before", renew_before, allow_zero=True)
        self._clock = clock
        # Two threads sharing one auth must not both log in when the token runs out.
        self._lock = threading.Lock()
        self._token: IamToken | None = None
        self._renew_at = 0.0

    @property
    def project_id(self) -> str | None:
        """token.project.id of the last token, None before the first login."""
        token = self._token
        return token.project_id if token else None

    def headers_for(self, method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
        return {**headers, TOKEN_HEADER: self._current()}

    def scoped_project_id(self) -> str | None:
        """The project the token is scoped to, logging in first if there is no token yet."""
        self._current()
        return self.project_id

    def invalidate(self, sent_headers: Mapping[str, str] | None = None) -> bool:
        with self._lock:
            sent = _get(sent_headers or {}, TOKEN_HEADER)
            # Another thread may have renewed already; then its fresh token stays.
            if self._token is not None and (sent is None or sent == self._token.value):
                self._token = None
        return True

    def _current(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._renew_at:
                self._token = self._login()
                self._renew_at = now + self._renewal_delay(self._token, now)
            return self._token.value

    def _login(self) -> IamToken:
        credentials, timeout = self._credentials, self._timeout
        if self._session is not None:
            token = request_token(self._session, credentials, timeout=timeout)
        else:
            # A login happens about once a day: a session of its own costs nothing.
            with requests.Session() as session:
                token = request_token(session, credentials, timeout=timeout)
        expires = datetime.fromtimestamp(token.expires_at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        logger.info("obtained an IAM token for %s, expiring %s", credentials.who(), expires)
        return token

    def _renewal_delay(self, token: IamToken, now: float) -> float:
        # The lifetime by IAM's own clock (issued_at to expires_at) is immune to local skew.
        # Renewing at half life caps the logins for tokens shorter than renew_before.
        lifetime = token.lifetime(now)
        return lifetime - min(self._renew_before, lifetime / 2)

    def __repr__(self) -> str:
        c = self._credentials
        return (
            f"IamPasswordAuth({c.iam_endpoint!r}, domain={c.domain!r}, username={c.username!r},"
            f" project_name={c.project_name!r}, password=<hidden>)"
        )


def _optional_header(name: str, value: str | None) -> str | None:
    return None if value is None else header_value(name, value)


def _name(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidQueryError(f"{name} is empty")
    return value.strip()


def _get(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)
