from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from dashboard.ingest.scheduler import run_due_polls
from dashboard.models import LoginFailure, PollRun, Source
from dashboard.web.accounts import create_user

PASSWORD = "a-password-for-tests-only"


def signed_in(role: str) -> Client:
    client = Client()
    client.force_login(create_user(f"{role}-user", PASSWORD, role))
    return client


def log_in(client: Client, username: str, password: str, address: str = "10.1.2.3"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.parametrize("url", ["/", "/?status=failed", "/polls/", "/account/tokens/"])
def test_it_sends_anonymous_visitors_to_the_login_page(anonymous_client, db, url):
    response = anonymous_client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_it_refuses_an_anonymous_refresh(anonymous_client, db):
    assert anonymous_client.post("/refresh/").status_code == 302
    assert not PollRun.objects.exists()


def test_it_shows_a_styled_login_page(anonymous_client, db):
    body = anonymous_client.get("/login/").content.decode()
    assert '<section class="login">' in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert "dashboard.css" in body


def test_it_logs_in_and_out(anonymous_client, db):
    create_user("amy", PASSWORD, "viewer")
    response = log_in(anonymous_client, "amy", PASSWORD)
    assert (response.status_code, response["Location"]) == (302, "/")
    assert anonymous_client.get("/").status_code == 200
    assert anonymous_client.post("/logout/").status_code == 302
    assert anonymous_client.get("/").status_code == 302


def test_it_says_no_to_a_wrong_password_without_saying_which_part_was_wrong(anonymous_client, db):
    create_user("amy", PASSWORD, "viewer")
    body = log_in(anonymous_client, "amy", "nope").content.decode()
    assert "Please enter a correct username and password" in body
    assert LoginFailure.objects.filter(username="amy").count() == 1


def test_it_throttles_logins_per_user_name(anonymous_client, db, settings):
    create_user("amy", PASSWORD, "viewer")
    for n in range(settings.LOGIN_FAILURES_PER_USER):
        log_in(anonymous_client, "amy", "wrong", address=f"10.0.0.{n}")
    # Even the right password is not checked now, from any address.
    response = log_in(anonymous_client, "amy", PASSWORD, address="10.9.9.9")
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert anonymous_client.get("/").status_code == 302


def test_it_throttles_logins_per_address(anonymous_client, db, settings):
    create_user("amy", PASSWORD, "viewer")
    for n in range(settings.LOGIN_FAILURES_PER_ADDRESS):
        log_in(anonymous_client, f"guess-{n}", "wrong", address="192.0.2.7")
    assert log_in(anonymous_client, "amy", PASSWORD, address="192.0.2.7").status_code == 429
    assert log_in(anonymous_client, "amy", PASSWORD, address="192.0.2.8").status_code == 302


def test_a_successful_login_clears_the_users_failures(anonymous_client, db):
    create_user("amy", PASSWORD, "viewer")
    log_in(anonymous_client, "amy", "wrong")
    log_in(anonymous_client, "amy", PASSWORD)
    assert not LoginFailure.objects.filter(username="amy").exists()


def test_a_viewer_reads_but_cannot_poll_on_demand(polled):
    viewer = signed_in("viewer")
    body = viewer.get("/").content.decode()
    assert "data-service-id" in body
    assert "Refresh now" not in body
    assert viewer.post("/refresh/", headers={"HX-Request": "true"}).status_code == 403
    assert Source.objects.get().poll_requested_at is None


def test_a_viewers_stale_page_may_still_ask_for_an_overdue_poll(polled, source):
    source.__class__.objects.filter(pk=source.pk).update(last_poll_at=None)
    response = signed_in("viewer").post("/refresh/", {"due": "1"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert PollRun.objects.count() == 1  # a page only asks; the poller polls
    run_due_polls(print)
    assert PollRun.objects.count() == 2


def test_an_operator_polls_on_demand(polled, source):
    source.__class__.objects.filter(pk=source.pk).update(last_poll_at=None)
    operator = signed_in("operator")
    assert "Refresh now" in operator.get("/").content.decode()
    assert operator.post("/refresh/", headers={"HX-Request": "true"}).status_code == 200
    assert PollRun.objects.count() == 1
    run_due_polls(print)
    assert PollRun.objects.count() == 2


@pytest.mark.parametrize(("role", "status"), [("viewer", 302), ("operator", 302), ("admin", 200)])
def test_only_admins_reach_the_admin(db, role, status):
    assert signed_in(role).get("/admin/dashboard/source/").status_code == status


def test_healthz_is_public_by_default(anonymous_client, db):
    assert anonymous_client.get("/healthz").status_code == 503  # no source: unhealthy, not 302


def test_healthz_can_require_a_login(anonymous_client, db, settings):
    settings.DASHBOARD_HEALTHZ_ACCESS = "login"
    assert anonymous_client.get("/healthz").status_code == 401
    assert signed_in("viewer").get("/healthz").status_code == 503


def test_it_trusts_an_sso_proxys_user_header_when_told_to(db, settings):
    index = settings.MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[: index + 1],
        "dashboard.web.security.ProxyUserMiddleware",
        *settings.MIDDLEWARE[index + 1 :],
    ]
    settings.AUTHENTICATION_BACKENDS = [
        "dashboard.web.security.ProxyUserBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    proxy = Client()
    assert proxy.get("/", headers={"X-Forwarded-User": "alice"}).status_code == 200
    alice = get_user_model().objects.get(username="alice")
    assert [g.name for g in alice.groups.all()] == ["viewer"]
    assert Client().get("/").status_code == 302  # no header, no user


def test_pages_carry_the_security_headers(client, db):
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_pages_have_no_inline_script(client, polled):
    body = client.get("/").content.decode()
    assert "<script>" not in body
    assert all(" src=" in tag for tag in body.split("<script")[1:])


def run_python(env_changes: dict[str, str | None], *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **{k: v for k, v in env_changes.items() if v is not None}}
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


PRODUCTION = {
    "SECRET_KEY": "x" * 20 + "a-random-looking-production-key-of-fifty-plus",
    "DEBUG": "0",
    "DASHBOARD_HTTPS": "1",
    "ALLOWED_HOSTS": "dashboard.example.com",
}


def test_the_production_settings_pass_djangos_deploy_checks(tmp_path):
    done = run_python(
        # The browser tests' harness setting is not production's.
        {**PRODUCTION, "DASHBOARD_VAR_DIR": str(tmp_path), "DJANGO_ALLOW_ASYNC_UNSAFE": None},
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


@pytest.mark.parametrize("key", [None, "short", "django-insecure-" + "k" * 60])
def test_the_web_app_refuses_to_start_without_a_real_secret_key(tmp_path, key):
    done = run_python(
        {**PRODUCTION, "SECRET_KEY": key, "DASHBOARD_VAR_DIR": str(tmp_path)},
        "-c",
        "import dashboard.wsgi",
    )
    assert done.returncode != 0
    assert "set SECRET_KEY to a random string" in done.stderr


def test_the_web_app_starts_with_a_real_secret_key(tmp_path):
    done = run_python(
        {**PRODUCTION, "DASHBOARD_VAR_DIR": str(tmp_path)}, "-c", "import dashboard.wsgi"
    )
    assert done.returncode == 0, done.stderr


def test_add_user_gives_one_role(db, monkeypatch):
    monkeypatch.setenv("DASHBOARD_NEW_PASSWORD", "correct-horse-battery-staple")
    call_command(
        "add_user", "ops", "--role", "operator", "--password-env", "DASHBOARD_NEW_PASSWORD"
    )
    user = get_user_model().objects.get(username="ops")
    assert user.has_perm("dashboard.refresh_source") and not user.is_staff


def test_add_user_refuses_a_weak_password(db, monkeypatch):
    monkeypatch.setenv("DASHBOARD_NEW_PASSWORD", "12345678")
    with pytest.raises(CommandError, match="too common|entirely numeric"):
        call_command("add_user", "ops", "--password-env", "DASHBOARD_NEW_PASSWORD")


def test_a_login_attempt_with_a_nul_byte_is_counted_not_crashed(anonymous_client, db):
    response = log_in(anonymous_client, "ro\x00ot", "wrong")
    assert response.status_code == 200
    assert LoginFailure.objects.get().username == "root"


def test_refresh_needs_a_csrf_token_htmx_or_not(db, operator):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator)
    assert strict.post("/refresh/").status_code == 403
    assert strict.post("/refresh/", headers={"HX-Request": "true"}).status_code == 403
    page = strict.get("/").content.decode()
    token = page.split('"X-CSRFToken": "')[1].split('"')[0]  # what htmx sends with each request
    answer = strict.post("/refresh/", headers={"HX-Request": "true", "X-CSRFToken": token})
    assert answer.status_code == 200
