"""Signing in: the login page with its throttle, and the three roles."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model, user_logged_in
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.views import LoginView
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy

from dashboard.models import LoginFailure
from dashboard.web.language import remember_on_sign_in

# Imported by the app's ready(): every sign-in (the login page, a proxy's user, a test's
# force_login) brings the user's saved language into the session.
user_logged_in.connect(remember_on_sign_in, dispatch_uid="dashboard-language-on-sign-in")

# What each role may do; a user's role is their group. Admins also get is_staff (the admin).
ROLES: dict[str, list[str]] = {
    "viewer": [],
    "operator": [
        "dashboard.refresh_source",
        "dashboard.add_savedview",
        "dashboard.delete_savedview",
        # Acknowledge alerts; start and expire silences.
        "dashboard.change_alert",
        "dashboard.add_silence",
        "dashboard.change_silence",
    ],
    "admin": [
        "dashboard.refresh_source",
        "dashboard.add_savedview",
        "dashboard.delete_savedview",
        "dashboard.change_alert",
        "dashboard.add_silence",
        "dashboard.change_silence",
        "dashboard.test_alertchannel",
        # Overwrite or delete anyone's saved view, not only one's own.
        "dashboard.change_savedview",
        "dashboard.view_notification",
        *(
            f"{app}.{action}_{model}"
            for app, model in [
                ("dashboard", "source"),
                ("dashboard", "alertchannel"),
                ("dashboard", "alertrule"),
                ("dashboard", "silence"),
                ("dashboard", "ownername"),
                ("auth", "user"),
                ("auth", "group"),
            ]
            for action in ("add", "change", "delete", "view")
        ),
        "dashboard.view_pollrun",
        "dashboard.view_service",
    ],
}


# Each role as people read it (the group keeps its English name).
ROLE_LABELS = {
    "viewer": pgettext_lazy("role", "viewer"),
    "operator": pgettext_lazy("role", "operator"),
    "admin": pgettext_lazy("role", "admin"),
}


def sync_roles(**_: object) -> None:
    """Create or update the role groups (after every migrate, once permissions exist)."""
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = Q(pk__in=[])
        for full in codenames:
            app, codename = full.split(".")
            wanted |= Q(content_type__app_label=app, codename=codename)
        group.permissions.set(Permission.objects.filter(wanted))


def create_user(username: str, password: str, role: str):
    """A user with one role: viewer (read), operator (refresh), admin (sources, users)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    sync_roles()
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.set_password(password)
    user.is_staff = role == "admin"
    user.save()
    user.groups.set([Group.objects.get(name=role)])
    return user


def client_address(request: HttpRequest) -> str | None:
    # REMOTE_ADDR is the peer; behind a proxy that is the proxy, which throttles everyone
    # behind it together: stricter, never looser.
    return request.META.get("REMOTE_ADDR") or None


class ThrottledLoginView(LoginView):
    """Django's login, refusing to check passwords after too many recent failures for the
    same user name or from the same address."""

    template_name = "dashboard/login.html"
    redirect_authenticated_user = True

    def get_redirect_url(self) -> str:
        # ?next=/login/ for a signed-in user would redirect to itself forever (Django raises).
        url = super().get_redirect_url()
        return "" if url.split("?")[0] == settings.LOGIN_URL else url

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        username = _storable(request.POST.get("username", ""))
        if self._throttled(username, client_address(request)):
            form = self.get_form()
            form.errors.clear()
            form.add_error(
                None,
                gettext("Too many failed logins. Wait a few minutes, then try again."),
            )
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        LoginFailure.objects.create(
            username=_storable(self.request.POST.get("username", "")),
            address=client_address(self.request),
            at=timezone.now(),
        )
        return super().form_invalid(form)

    def form_valid(self, form):
        LoginFailure.objects.filter(username=form.get_user().get_username()).delete()
        return super().form_valid(form)

    def _throttled(self, username: str, address: str | None) -> bool:
        since = timezone.now() - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW)
        recent = LoginFailure.objects.filter(at__gte=since)
        # Old rows are dropped as we go: the table holds one window of failures at most.
        LoginFailure.objects.filter(at__lt=since).delete()
        if recent.filter(username=username).count() >= settings.LOGIN_FAILURES_PER_USER:
            return True
        return bool(
            address
            and recent.filter(address=address).count() >= settings.LOGIN_FAILURES_PER_ADDRESS
        )


def _storable(username: str) -> str:
    # As typed, minus what PostgreSQL cannot store in text (NUL) and past the column's width.
    return username.replace("\x00", "")[:150]
