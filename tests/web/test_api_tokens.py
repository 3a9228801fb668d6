from __future__ import annotations

import hashlib
import logging
import re

import pytest
from django.test import Client

from dashboard.models import ApiToken, PollRun
from dashboard.web.accounts import create_user

PASSWORD = "a-password-for-tests-only"


def signed_in(username: str, role: str) -> Client:
    client = Client()
    client.force_login(create_user(username, PASSWORD, role))
    return client


def make_token(client: Client, name: str = "nightly report") -> str:
    response = client.post("/account/tokens/", {"name": name})
    assert response.status_code == 200
    found = re.search(
        r'<code class="token-secret" data-token>([^<]+)</code>', response.content.decode()
    )
    assert found, "the new token is shown once"
    return found.group(1)


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def viewer(db) -> Client:
    return signed_in("vic", "viewer")


def test_it_links_the_tokens_page_from_the_header(viewer):
    assert 'href="/account/tokens/"' in viewer.get("/").content.decode()


def test_it_creates_a_token_shows_it_once_and_stores_only_its_hash(viewer):
    token = make_token(viewer)
    stored = ApiToken.objects.get()
    assert stored.name == "nightly report"
    assert stored.digest == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(stored.prefix) and len(token) > 40
    assert not any(token in str(value) for value in vars(stored).values())
    listing = viewer.get("/account/tokens/").content.decode()
    assert "nightly report" in listing and stored.prefix in listing
    assert token not in listing


def test_it_refuses_a_token_without_a_name(viewer):
    response = viewer.post("/account/tokens/", {"name": "  "})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_a_bearer_token_reads_the_api_without_a_session(viewer, make_service):
    make_service("ocr-prod")
    token = make_token(viewer)
    script = Client()
    response = script.get("/api/services", **bearer(token))
    assert response.status_code == 200
    assert [s["service_name"] for s in response.json()["services"]] == ["ocr-prod"]
    assert script.get("/api/alerts", **bearer(token)).status_code == 200
    assert "sessionid" not in response.cookies
    assert ApiToken.objects.get().last_used_at is not None


def test_a_session_still_reads_the_api(viewer):
    assert viewer.get("/api/services").status_code == 200


@pytest.mark.parametrize("url", ["/api/services", "/api/alerts"])
def test_it_answers_401_json_without_a_session_or_token(db, url):
    response = Client().get(url)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize("header", ["Bearer mfd_00000000_unknown", "Bearer ", "bearer nonsense"])
def test_it_answers_401_to_an_unknown_token(db, header):
    response = Client().get("/api/services", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert response.json()["error"] == "unauthorized"


def test_a_revoked_token_is_refused(viewer):
    token = make_token(viewer)
    stored = ApiToken.objects.get()
    response = viewer.post(f"/account/tokens/{stored.pk}/revoke")
    assert response.status_code == 302
    stored.refresh_from_db()
    assert stored.revoked
    assert Client().get("/api/services", **bearer(token)).status_code == 401
    assert "revoked" in viewer.get("/account/tokens/").content.decode()


def test_a_token_of_an_inactive_user_is_refused(viewer):
    token = make_token(viewer)
    ApiToken.objects.get().user.__class__.objects.update(is_active=False)
    assert Client().get("/api/services", **bearer(token)).status_code == 401


def test_another_scheme_is_left_to_the_session(viewer, db):
    basic = {"HTTP_AUTHORIZATION": "Basic dXNlcjpwdw=="}  # a proxy's, passed through
    assert viewer.get("/api/services", **basic).status_code == 200
    anonymous = Client().get("/api/services", **basic)
    assert anonymous.status_code == 401
    assert "invalid_token" not in anonymous["WWW-Authenticate"]


def test_a_bad_token_is_refused_even_beside_a_session(viewer):
    assert viewer.get("/api/services", **bearer("mfd_nope")).status_code == 401


def test_nobody_revokes_or_sees_someone_elses_token(viewer, db):
    make_token(viewer, "vic's script")
    other = signed_in("olga", "operator")
    stored = ApiToken.objects.get()
    assert other.post(f"/account/tokens/{stored.pk}/revoke").status_code == 404
    stored.refresh_from_db()
    assert not stored.revoked
    assert "vic&#x27;s script" not in other.get("/account/tokens/").content.decode()


def test_a_viewers_token_cannot_do_what_viewers_cannot(viewer, source):
    token = make_token(viewer)
    script = Client()
    # A token opens the API only: never pages, admin or actions.
    assert script.post("/refresh/", **bearer(token)).status_code in (302, 401, 403)
    assert script.get("/", **bearer(token)).status_code == 302
    assert script.get("/admin/", **bearer(token)).status_code == 302
    assert script.post("/views/save", {"name": "x"}, **bearer(token)).status_code in (302, 403)
    source.refresh_from_db()
    assert source.poll_requested_at is None
    assert not PollRun.objects.exists()


def test_a_token_acts_with_its_users_role(viewer):
    from dashboard.web.tokens import user_for_token

    token = make_token(viewer)
    user = user_for_token(token)
    assert user.username == "vic"
    assert not user.has_perm("dashboard.refresh_source")
    assert not user.has_perm("dashboard.add_savedview")


def test_the_token_never_reaches_a_log(viewer, caplog):
    caplog.set_level(logging.DEBUG)
    token = make_token(viewer)
    Client().get("/api/services", **bearer(token))
    Client().get("/api/services", **bearer(token + "x"))
    viewer.get("/account/tokens/")
    assert token not in caplog.text
    assert all(token not in record.getMessage() for record in caplog.records)


def test_the_page_that_shows_a_token_is_never_cached(viewer):
    response = viewer.post("/account/tokens/", {"name": "ci"})
    assert "no-store" in response["Cache-Control"]


def test_the_tokens_page_needs_a_login(db):
    response = Client().get("/account/tokens/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
