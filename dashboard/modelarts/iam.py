"""Getting a project-scoped IAM token with a user name and password (API.md §3a)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests

from .errors import AuthError, ResponseError, TransportError, excerpt
from .transport import describe_cause, scrub, text

# nocatalog drops the service catalogue, the bulk of a token body, which we never read.
TOKEN_PATH = "/v3/auth/tokens?nocatalog=true"
SUBJECT_TOKEN_HEADER = "X-Subject-Token"


@dataclass(frozen=True)
class Credentials:
    iam_endpoint: str
    domain: str
    username: str
    password: str = field(repr=False)
    project_name: str

    def body(self) -> dict[str, object]:
        user = {"name": self.username, "password": self.password, "domain": {"name": self.domain}}
        return {
            "auth": {
                "identity": {"methods": ["password"], "password": {"user": user}},
                # ModelArts needs a project-scoped token (ModelArts.0204/0207/0212 otherwise).
                "scope": {"project": {"name": self.project_name}},
            }
        }

    def who(self) -> str:
        return f"user {self.username!r} of account {self.domain!r} in project {self.project_name!r}"


@dataclass(frozen=True)
class IamToken:
    value: str = field(repr=False)
    expires_at: float
    # IAM's own clock; with expires_at it gives the lifetime free of any local clock skew.
    issued_at: float | None
    project_id: str | None

    def lifetime(self, now: float) -> float:
        return self.expires_at - (self.issued_at if self.issued_at is not None else now)


def request_token(
    session: requests.Session, credentials: Credentials, *, timeout: float
) -> IamToken:
    """POST /v3/auth/tokens once; AuthError if IAM says no, TransportError if unreachable."""
    host = urlsplit(credentials.iam_endpoint).netloc
    try:
        response = session.post(
            credentials.iam_endpoint + TOKEN_PATH,
            data=json.dumps(credentials.body()).encode(),
            headers={"Content-Type": "application/json;charset=utf8"},
            timeout=timeout,
            # A redirect would carry the password to wherever Location points.
            allow_redirects=False,
        )
    except requests.exceptions.RequestException as exc:
        raise TransportError(f"could not reach IAM at {host}: {describe_cause(exc)}") from exc
    secrets = [credentials.password, response.headers.get(SUBJECT_TOKEN_HEADER) or ""]
    if not 200 <= response.status_code < 300:
        raise _refused(response, credentials, host, secrets)
    try:
        return _read_token(response, secrets)
    except ResponseError as exc:
        raise ResponseError(f"IAM at {host} issued an unusable token: {exc}") from exc


def _refused(
    response: requests.Response, credentials: Credentials, host: str, secrets: list[str]
) -> AuthError:
    # Scrubbed whole, before any excerpt: a secret cut in two would no longer match.
    body = scrub(text(response), secrets)
    error = AuthError.from_body(response.status_code, body, response.headers)
    return AuthError(
        status=error.status,
        code=error.code,
        message=scrub(
            f"IAM at {host} gave no token to {credentials.who()}: {error.message}", secrets
        ),
        request_id=error.request_id,
    )


def _read_token(response: requests.Response, secrets: list[str]) -> IamToken:
    value = (response.headers.get(SUBJECT_TOKEN_HEADER) or "").strip()
    if not value:
        raise ResponseError(f"the {SUBJECT_TOKEN_HEADER} header is missing")
    if not (value.isascii() and value.isprintable()) or " " in value:
        raise ResponseError(f"the {SUBJECT_TOKEN_HEADER} header is not a token")
    try:
        body = json.loads(response.content)
    except (ValueError, RecursionError) as exc:
        sample = excerpt(scrub(text(response), secrets))
        raise ResponseError(f"the body is not JSON: {sample}") from exc
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, dict):
        raise ResponseError("the body has no 'token' object")
    expires_at = _timestamp(token.get("expires_at"))
    if expires_at is None:
        raise ResponseError(f"token.expires_at {token.get('expires_at')!r} is not an ISO 8601 time")
    project = token.get("project")
    project_id = project.get("id") if isinstance(project, dict) else None
    return IamToken(
        value=value,
        expires_at=expires_at,
        issued_at=_timestamp(token.get("issued_at")),
        project_id=project_id if isinstance(project_id, str) and project_id else None,
    )


def _timestamp(value: object) -> float | None:
    """Epoch seconds of IAM's '2020-01-04T09:05:22.701000Z'; a time without a zone is UTC."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
