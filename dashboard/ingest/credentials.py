"""A source's client: its secrets read from the environment variables it names, never stored."""

from __future__ import annotations

import hashlib
import os
import threading

from django.conf import settings

from dashboard.modelarts import (
    AkSkAuth,
    IamPasswordAuth,
    ModelArtsClient,
    NoAuth,
    RetryPolicy,
    TokenAuth,
)
from dashboard.modelarts.auth import Auth
from dashboard.models import (
    SECRET_ENV_PREFIXES,
    Source,
)


class SourceConfigError(Exception):
    """A source that cannot be polled as configured (a missing secret, say)."""


def build_client(source: Source, *, retry: RetryPolicy | None = None) -> ModelArtsClient:
    """The client for a source, its secrets read from the environment variables it names."""
    auth = _auth_for(source)
    project_id = source.project_id
    if not project_id and isinstance(auth, IamPasswordAuth):
        project_id = auth.scoped_project_id() or ""  # the token says which project it is for
    try:
        return ModelArtsClient(
            source.endpoint,
            project_id,
            auth,
            timeout=settings.MODELARTS_TIMEOUT,
            offset_mode=source.offset_mode,
            retry=retry,
        )
    except ValueError as exc:
        raise SourceConfigError(f"source {source.name!r}: {exc}") from exc


def _auth_for(source: Source) -> Auth:
    kind = source.auth_kind
    if kind == Source.AuthKind.AKSK:
        return AkSkAuth(
            _secret(source, "ak_env", "access key (AK)"),
            _secret(source, "sk_env", "secret key (SK)"),
            security_token=_secret(source, "security_token_env", "security token", needed=False),
            project_id=source.project_id or None,
        )
    if kind == Source.AuthKind.TOKEN:
        return TokenAuth(_secret(source, "token_env", "IAM token"))
    if kind == Source.AuthKind.IAM_PASSWORD:
        return _iam_auth(source, _secret(source, "password_env", "IAM password"))
    if kind == Source.AuthKind.NONE:
        return NoAuth()
    raise SourceConfigError(f"source {source.name!r}: unknown authentication {kind!r}")


# One IAM login per source and process, reused until it is renewed: IAM tokens last a day, and
# logging in on every poll would look like an attack to IAM. Keyed by everything the login
# uses (the password by its hash), so a changed setting logs in afresh.
_iam_auths: dict[tuple, tuple[str, IamPasswordAuth]] = {}

_iam_lock = threading.Lock()


def _iam_auth(source: Source, password: str) -> IamPasswordAuth:
    fingerprint = hashlib.sha256(password.encode()).hexdigest()
    key = (source.pk, source.iam_endpoint, source.iam_domain, source.iam_username, source.region)
    with _iam_lock:
        cached = _iam_auths.get(key)
        if cached is None or cached[0] != fingerprint:
            auth = IamPasswordAuth(
                source.iam_endpoint,
                source.iam_domain,
                source.iam_username,
                password,
                source.region,
                timeout=settings.MODELARTS_TIMEOUT,
            )
            _iam_auths[key] = cached = (fingerprint, auth)
        return cached[1]


def _secret(source: Source, field_name: str, what: str, *, needed: bool = True) -> str | None:
    variable = getattr(source, field_name)
    if variable and not variable.startswith(SECRET_ENV_PREFIXES):
        raise SourceConfigError(
            f"source {source.name!r}: {field_name} must name a variable starting with "
            f"{' or '.join(SECRET_ENV_PREFIXES)}, not {variable!r}"
        )
    value = os.environ.get(variable, "").strip() if variable else ""
    if not value and not needed:
        return None
    if not value:
        raise SourceConfigError(
            f"environment variable {variable or '(none named)'} holding the {what} "
            f"for source {source.name!r} is not set"
        )
    return value
