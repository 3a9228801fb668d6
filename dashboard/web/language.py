"""The language a person reads the dashboard in.

Chosen with the header's switch (POST /language/): a signed-in user's choice is saved in their
UserPreference, so it follows them to every browser they sign in with; everyone also gets the
language cookie, which LocaleMiddleware reads (the login page, after a logout, stays in it).
Without a choice, the browser's Accept-Language decides, then settings.LANGUAGE_CODE.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import SESSION_KEY as USER_SESSION_KEY
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from dashboard.models import UserPreference

# The saved preference, copied into the session at sign-in: pages read it from there, so a
# signed-in page costs no query more than before. "" means none saved.
SESSION_KEY = "dashboard_language"


def supported(code: str) -> bool:
    return code in dict(settings.LANGUAGES)


def saved_language(user_id: object) -> str:
    language = (
        UserPreference.objects.filter(user_id=user_id).values_list("language", flat=True).first()
    )
    return language if language and supported(language) else ""


def remember_on_sign_in(sender: object, request: HttpRequest | None, user, **_: object) -> None:
    """user_logged_in: bring the user's saved language into their new session."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = saved_language(user.pk)


class UserLanguageMiddleware:
    """A signed-in user's saved language wins over the cookie and Accept-Language (which
    LocaleMiddleware, earlier in the chain, went by)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = request.session
        language = session.get(SESSION_KEY)
        if language is None and session.get(USER_SESSION_KEY):
            # A session from before preferences were saved: look once, then keep the answer.
            language = session[SESSION_KEY] = saved_language(session[USER_SESSION_KEY])
        if language and supported(language):
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)


@require_POST
@login_not_required
def set_language(request: HttpRequest) -> HttpResponse:
    """The header's switch: remember the choice, then back to the page it was made on."""
    language = request.POST.get("language", "")
    target = _next_url(request)
    response = HttpResponseRedirect(target)
    response.status_code = 303  # back to the page with a GET
    if not supported(language):
        return response
    if request.user.is_authenticated:
        UserPreference.objects.update_or_create(user=request.user, defaults={"language": language})
        request.session[SESSION_KEY] = language
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
    return response


def _next_url(request: HttpRequest) -> str:
    """The page the switch was on; only ever one of ours (never an open redirect)."""
    for candidate in (request.POST.get("next", ""), request.headers.get("Referer", "")):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return candidate
    return "/"
