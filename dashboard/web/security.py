"""Headers, proxy sign-in and the production checks that keep the dashboard's pages inert."""

from __future__ import annotations

import os
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.backends import RemoteUserBackend
from django.contrib.auth.middleware import RemoteUserMiddleware
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

# Everything from our own origin, nothing inline: strings the API sends (names, descriptions)
# can never become script or style, even if a template forgot to escape one.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
VIEWER_GROUP = "viewer"
MIN_SECRET_KEY_LENGTH = 50


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


class ProxyUserMiddleware(RemoteUserMiddleware):
    """DASHBOARD_AUTH=remote-user: the user name comes from the SSO proxy's header."""

    @property
    def header(self) -> str:  # type: ignore[override]
        name = settings.DASHBOARD_REMOTE_USER_HEADER.upper().replace("-", "_")
        return f"HTTP_{name}"


class ProxyUserBackend(RemoteUserBackend):
    """Users the proxy vouches for are created on first sight, as viewers."""

    def configure_user(self, request: HttpRequest, user, created: bool = True):
        if created:
            user.groups.add(Group.objects.get_or_create(name=VIEWER_GROUP)[0])
        return user


def require_production_secret_key() -> None:
    """The web app in production must be given its SECRET_KEY: a generated one differs per
    machine (sessions break behind a load balancer) and a well-known one forges sessions."""
    if settings.DEBUG:
        return
    key = os.environ.get("SECRET_KEY", "")
    if len(key) < MIN_SECRET_KEY_LENGTH or key.startswith("django-insecure"):
        raise ImproperlyConfigured(
            f"set SECRET_KEY to a random string of at least {MIN_SECRET_KEY_LENGTH} characters, "
            "the same for every web worker (e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe(50))')"
        )
