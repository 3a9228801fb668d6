"""Personal API tokens: scripts call /api/services and /api/alerts with `Authorization: Bearer
<token>` and act with their user's role. /account/tokens/ makes and revokes them.

A token is `mfd_` + a short prefix + a long random secret. Only its SHA-256 is stored (a
lookup by an indexed digest, so no timing leaks which tokens exist); the prefix stays
readable so people can tell tokens apart. The token itself is shown once, in the answer to
the request that made it, and never logged.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from django import forms
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.models import ApiToken

TOKEN_START = "mfd_"
PREFIX_LENGTH = 8
# The stored last use moves at most this often: a script polling every second must not
# write a row every second.
LAST_USED_STEP = timedelta(minutes=1)


def new_token() -> tuple[str, str]:
    """A fresh token and its visible prefix."""
    prefix = TOKEN_START + secrets.token_hex(PREFIX_LENGTH // 2)
    return f"{prefix}_{secrets.token_urlsafe(32)}", prefix


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def user_for_token(token: str):
    """The active user a live token belongs to, or None (unknown, revoked, inactive)."""
    if not token.startswith(TOKEN_START):
        return None
    found = ApiToken.objects.select_related("user").filter(digest=digest(token)).first()
    if found is None or found.revoked or not found.user.is_active:
        return None
    now = timezone.now()
    if found.last_used_at is None or now - found.last_used_at >= LAST_USED_STEP:
        ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
    return found.user


def bearer(request: HttpRequest) -> str | None:
    """The bearer token a request sends ("" for an empty one), or None without one. Another
    scheme is not ours to judge: a proxy's Basic credentials pass through to the session."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def unauthorized(message: str, *, invalid: bool) -> JsonResponse:
    response = JsonResponse({"error": "unauthorized", "detail": message}, status=401)
    challenge = 'Bearer realm="api"'
    if invalid:
        challenge += ', error="invalid_token"'
    response["WWW-Authenticate"] = challenge
    return response


def api_auth(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A JSON endpoint for a signed-in session or a bearer token. Without either it answers
    401 with a JSON body, never the login page's redirect (a script cannot follow one).

    A request that sends a token is judged by the token alone, even with a session cookie.
    Only GETs come here, which CSRF never checks: a token never authorizes a change."""

    @login_not_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        token = bearer(request)
        if token is not None:
            user = user_for_token(token) if token else None
            if user is None:
                return unauthorized(
                    "The token is unknown, revoked, or its user is inactive.", invalid=True
                )
            request.user = user
        elif not request.user.is_authenticated:
            return unauthorized(
                "Sign in, or send Authorization: Bearer <token> (make one on /account/tokens/).",
                invalid=False,
            )
        return view(request, *args, **kwargs)

    return wrapped


class TokenForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=80,
        strip=True,
        help_text=gettext_lazy("What the token is for, e.g. the script that uses it."),
    )


@never_cache
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    """The signed-in user's tokens; a POST makes one and shows it, this once."""
    form = TokenForm(request.POST or None)
    created = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            token, prefix = new_token()
            ApiToken.objects.create(
                user=request.user,
                name=form.cleaned_data["name"],
                prefix=prefix,
                digest=digest(token),
            )
            created = token
            form = TokenForm()
        else:
            status = 400
    context = {
        "tokens": ApiToken.objects.filter(user=request.user),
        "form": form,
        "created": created,
        "section": "tokens",
    }
    return render(request, "dashboard/tokens.html", context, status=status)


@require_POST
def revoke_token(request: HttpRequest, pk: int) -> HttpResponse:
    # Someone else's token is a 404: its existence is none of this user's business.
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return redirect("/account/tokens/")
