"""Who may call the simulated API: AK/SK signatures checked like the API gateway, IAM tokens.

AK/SK requests are checked as Huawei's API gateway does (API.md §3b): signature over the request
as received, X-Sdk-Date within 15 minutes, host signed. IAM issues project-scoped tokens from
`POST /v3/auth/tokens` (API.md §3a) that expire on the fleet's clock, so tests expire them by
advancing a ManualClock instead of waiting.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from dashboard.devtools.simulator.wire import ApiError, KeystoneError, Reply
from dashboard.modelarts.signer import (
    canonical_request,
    format_sdk_date,
    parse_authorization,
    parse_sdk_date,
    sign,
)

SIGNATURE_FAILURE = "APIGW.0301"
MAX_SKEW = 15 * 60  # seconds between X-Sdk-Date and the gateway's clock
# Values never echoed back in an error, whoever asks.
SECRET_SIGNED_HEADERS = ("x-security-token",)


def _fail(reason: str) -> ApiError:
    return ApiError(
        401,
        SIGNATURE_FAILURE,
        f"Incorrect IAM authentication information: verify aksk signature fail, {reason}",
        gateway=True,
    )


class AkSkVerifier:
    """Checks `Authorization: SDK-HMAC-SHA256 …` against one access key."""

    def __init__(
        self, ak: str, sk: str, security_token: str | None, clock: Callable[[], float]
    ) -> None:
        self._ak, self._sk, self._security_token, self._clock = ak, sk, security_token, clock

    def verify(self, method: str, target: str, headers: Message, body: bytes) -> None:
        """Raise the gateway's APIGW.0301 unless the request is signed by the known key."""
        value = headers.get("Authorization")
        if not value:
            raise _fail("the Authorization header is missing")
        try:
            access, signed, signature = parse_authorization(value)
        except ValueError as exc:
            raise _fail(str(exc)) from exc
        if not hmac.compare_digest(access.encode(), self._ak.encode()):
            raise _fail("the access key is unknown")
        self._check_date(headers.get("X-Sdk-Date"))
        if "host" not in signed:
            raise _fail("the host header is not signed")
        missing = [name for name in signed if headers.get(name) is None]
        if missing:
            raise _fail(f"signed header {missing[0]} is not in the request")
        self._check_security_token(headers, signed)
        values = {name: headers[name] for name in signed}
        # The signer reads a request target ("/path?query") as well as a URL: the path and the
        # query string are checked exactly as they arrived.
        expected = sign(method, target, values, body, self._sk, signed)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            shown = {
                name: "<hidden>" if name in SECRET_SIGNED_HEADERS else value
                for name, value in values.items()
            }
            # The real gateway shows its canonical request, newlines as "|", to help debug.
            canonical = canonical_request(method, target, shown, signed, body).replace("\n", "|")
            raise _fail(f"the signature does not match, canonicalRequest: {canonical}")

    def _check_date(self, value: str | None) -> None:
        if not value:
            raise _fail("the X-Sdk-Date header is missing")
        try:
            signed_at = parse_sdk_date(value)
        except ValueError as exc:
            raise _fail(f"X-Sdk-Date {value!r} is not like 20240101T000000Z") from exc
        now = self._clock()
        if abs(now - signed_at) > MAX_SKEW:
            here = format_sdk_date(now)
            raise _fail(f"X-Sdk-Date {value} is more than 15 minutes from the time here, {here}")

    def _check_security_token(self, headers: Message, signed: list[str]) -> None:
        if self._security_token is None:
            return
        given = headers.get("X-Security-Token")
        if not given:
            raise _fail("the X-Security-Token header of temporary credentials is missing")
        if "x-security-token" not in signed:
            raise _fail("the x-security-token header is not signed")
        if not hmac.compare_digest(given.encode(), self._security_token.encode()):
            raise _fail("the security token does not belong to this access key")


def _stable_id(*parts: str) -> str:
    """A 32-hex id that is always the same for the same name, like IAM's own ids."""
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:32]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _at(body: Any, *path: str) -> Any:
    """body[path[0]][path[1]]…, or None where the shape is not what was asked for."""
    for key in path:
        body = body.get(key) if isinstance(body, dict) else None
    return body


def _string_at(body: Any, *path: str) -> str:
    value = _at(body, *path)
    if not isinstance(value, str) or not value:
        raise KeystoneError(400, f"The request body needs a string at {'.'.join(path)}.")
    return value


class TokenIssuer:
    """IAM's password login for a few users, issuing tokens scoped to one project."""

    def __init__(
        self,
        users: Mapping[tuple[str, str], str],
        project_id: str,
        project_name: str,
        ttl: float,
        clock: Callable[[], float],
    ) -> None:
        self._users, self._ttl, self._clock = dict(users), ttl, clock
        self.project_id, self.project_name = project_id, project_name
        self._tokens: dict[str, float] = {}  # token → when it expires, on the fleet's clock
        self._lock = threading.Lock()
        self.logins = 0

    def login(self, body: bytes) -> Reply:
        """`POST /v3/auth/tokens` with a password: 201 and X-Subject-Token, or KeystoneError."""
        try:
            request = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise KeystoneError(400, "The request body must be JSON.") from exc
        if _at(request, "auth", "identity", "methods") != ["password"]:
            raise KeystoneError(400, 'auth.identity.methods must be ["password"].')
        user = ("auth", "identity", "password", "user")
        domain = _string_at(request, *user, "domain", "name")
        name = _string_at(request, *user, "name")
        password = _string_at(request, *user, "password")
        self._check_scope(_at(request, "auth", "scope", "project"))
        known = self._users.get((domain, name))
        if known is None or not hmac.compare_digest(known.encode(), password.encode()):
            raise KeystoneError(401, "The username or password is wrong.")
        return self._issue(domain, name)

    def _check_scope(self, project: Any) -> None:
        name, project_id = _at(project, "name"), _at(project, "id")
        if name is None and project_id is None:
            raise KeystoneError(400, "ModelArts needs a token scoped to auth.scope.project.")
        if name not in (None, self.project_name) or project_id not in (None, self.project_id):
            raise KeystoneError(400, f"This IAM only knows the project {self.project_name}.")

    def _issue(self, domain: str, name: str) -> Reply:
        token, now = "MII" + secrets.token_urlsafe(48), self._clock()
        with self._lock:
            self._tokens = {t: end for t, end in self._tokens.items() if end > now}
            self._tokens[token] = now + self._ttl
            self.logins += 1
        domain_ref = {"id": _stable_id("domain", domain), "name": domain}
        body = {
            "token": {
                "expires_at": _iso(now + self._ttl),
                "issued_at": _iso(now),
                "methods": ["password"],
                "project": {"id": self.project_id, "name": self.project_name, "domain": domain_ref},
                "user": {
                    "id": _stable_id("user", domain, name),
                    "name": name,
                    "domain": domain_ref,
                    "password_expires_at": "",
                },
                "roles": [{"id": _stable_id("role", "te_admin"), "name": "te_admin"}],
            }
        }
        return Reply.json(201, body, **{"X-Subject-Token": token})

    def check(self, token: str | None) -> None:
        """Raise ModelArts' 401 unless `token` was issued here and is still valid."""
        if not token:
            raise ApiError(401, "ModelArts.0201", "The X-Auth-Token header is missing.")
        with self._lock:
            expires = self._tokens.get(token)
        if expires is None:
            raise ApiError(401, "ModelArts.0203", "The token in X-Auth-Token is invalid.")
        if self._clock() >= expires:
            raise ApiError(401, "ModelArts.0202", "The token has expired; get a new one from IAM.")

    def revoke_all(self) -> None:
        with self._lock:
            self._tokens.clear()
