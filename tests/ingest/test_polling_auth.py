"""Each way of authenticating, polled end to end over real HTTP through build_client.

Secrets live in environment variables the Source names; none of them may reach an error
message, a log record, or (for a variable the Source should not name) the network.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from conftest import PROJECT_ID, TOKEN, TOKEN_ENV
from django.core.exceptions import ValidationError

from dashboard.devtools.simulator import Fleet, ManualClock, SimulatorServer
from dashboard.ingest import credentials
from dashboard.ingest import poll as polling
from dashboard.modelarts import auth as auth_module
from dashboard.models import PollRun, Service, Source

AK, SK = "MATESTAK0000000000001", "test-secret-key-7d41c0b9e2a84f5c9a01"
SECURITY_TOKEN = "sts-temporary-token-0b3c7e91d2f4"
DOMAIN, USER, PASSWORD = "example-domain", "dashboard-reader", "pass-word-81f2c4"
REGION = "cn-north-4"  # the IAM project name the password token is scoped to
TTL = 3600.0
AK_ENV, SK_ENV = "MODELARTS_TEST_AK", "MODELARTS_TEST_SK"
SECURITY_TOKEN_ENV = "MODELARTS_TEST_SECURITY_TOKEN"
PASSWORD_ENV = "HUAWEICLOUD_TEST_PASSWORD"
SECRETS = {TOKEN_ENV: TOKEN, AK_ENV: AK, SK_ENV: SK, PASSWORD_ENV: PASSWORD}
LIST_PATH = f"/v1/{PROJECT_ID}/services"
LOGIN_PATH = "/v3/auth/tokens"


@pytest.fixture
def clock() -> ManualClock:
    # The gateway checks X-Sdk-Date against the simulator's clock, and the poller signs with
    # the real one: the two must agree within 15 minutes.
    return ManualClock(time.time())


@pytest.fixture(autouse=True)
def secrets_in_env(db, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(SECURITY_TOKEN_ENV, raising=False)
    # IAM logins are cached per process: every test starts without one.
    monkeypatch.setattr(credentials, "_iam_auths", {})


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Secrets the poller made on the way: AK/SK signatures and IAM tokens."""
    made: list[str] = []
    sign_headers, request_token = auth_module.sign_headers, auth_module.request_token

    def signing(*args, **kwargs):
        headers = sign_headers(*args, **kwargs)
        made.append(headers["Authorization"].rpartition("Signature=")[2])
        return headers

    def login(*args, **kwargs):
        token = request_token(*args, **kwargs)
        made.append(token.value)
        return token

    monkeypatch.setattr(auth_module, "sign_headers", signing)
    monkeypatch.setattr(auth_module, "request_token", login)
    return made


def serve(mode: str, fleet: Fleet, *, security_token: str | None = None) -> SimulatorServer:
    if mode == "token":
        return SimulatorServer(fleet, project_id=PROJECT_ID, auth="token", token=TOKEN)
    if mode == "aksk":
        return SimulatorServer(
            fleet, project_id=PROJECT_ID, auth="aksk", ak=AK, sk=SK, security_token=security_token
        )
    return SimulatorServer(
        fleet,
        project_id=PROJECT_ID,
        auth="iam",
        iam_users={(DOMAIN, USER): PASSWORD},
        project_name=REGION,
        token_ttl=TTL,
    )


def make_source(mode: str, server: SimulatorServer, **fields: str) -> Source:
    settings = {
        "token": {"token_env": TOKEN_ENV},
        "aksk": {"ak_env": AK_ENV, "sk_env": SK_ENV},
        "iam-password": {
            "project_id": "",  # learned from the token
            "iam_endpoint": server.url,
            "iam_domain": DOMAIN,
            "iam_username": USER,
            "password_env": PASSWORD_ENV,
            "region": REGION,
        },
    }[mode]
    values = {"project_id": PROJECT_ID, **settings, **fields}
    return Source.objects.create(name=mode, endpoint=server.url, auth_kind=mode, **values)


@pytest.fixture
def aksk(fleet: Fleet) -> Iterator[SimulatorServer]:
    with serve("aksk", fleet) as server:
        yield server


@pytest.fixture
def temporary_aksk(fleet: Fleet) -> Iterator[SimulatorServer]:
    with serve("aksk", fleet, security_token=SECURITY_TOKEN) as server:
        yield server


@pytest.fixture
def iam(fleet: Fleet) -> Iterator[SimulatorServer]:
    with serve("iam-password", fleet) as server:
        yield server


def assert_failed(run: PollRun, source: Source, kind: str, *says: str) -> None:
    source.refresh_from_db()
    assert not run.ok
    assert run.error_kind == kind
    for text in says:
        assert text in run.error_message
    assert source.last_error == run.error_message
    assert source.failures_since_success >= 1


def paths(server: SimulatorServer, since: int = 0) -> list[str]:
    return [target.partition("?")[0] for _, target, _ in server.requests[since:]]


# A static token


def test_it_polls_with_a_static_token(source, simulator, fleet):
    run = polling.poll_source(source)
    assert run.ok, run.error_message
    assert run.fetched_count == len(fleet.items()) == Service.objects.count()
    assert all(headers.get("X-Auth-Token") == "<hidden>" for _, _, headers in simulator.requests)


def test_it_records_a_wrong_token_as_modelarts_0203(source, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "a-wrong-token-1c9e")
    run = polling.poll_source(source)
    assert_failed(run, source, "api-error", "ModelArts.0203", "HTTP 401")
    assert "a-wrong-token-1c9e" not in run.error_message
    assert TOKEN not in run.error_message
    assert not Service.objects.exists()


# AK/SK request signing


def test_it_polls_with_an_aksk_signature(aksk, fleet):
    source = make_source("aksk", aksk)
    run = polling.poll_source(source)
    assert run.ok, run.error_message
    assert run.fetched_count == len(fleet.items()) == Service.objects.count()
    for _, _, headers in aksk.requests:
        assert headers.get("Authorization") == "<hidden>"
        assert "X-Auth-Token" not in headers


def test_it_records_a_wrong_sk_as_apigw_0301_without_the_sk_or_signature(aksk, sent, monkeypatch):
    wrong = "another-secret-key-e5a1f0c3b9d27784"
    monkeypatch.setenv(SK_ENV, wrong)
    source = make_source("aksk", aksk)
    run = polling.poll_source(source)
    assert_failed(run, source, "api-error", "APIGW.0301", "HTTP 401", "signature")
    assert sent, "the poller signed its request"
    for secret in (wrong, SK, *sent):
        assert secret not in run.error_message
    assert not Service.objects.exists()


def test_it_polls_with_temporary_credentials(temporary_aksk, fleet, monkeypatch):
    monkeypatch.setenv(SECURITY_TOKEN_ENV, SECURITY_TOKEN)
    source = make_source("aksk", temporary_aksk, security_token_env=SECURITY_TOKEN_ENV)
    run = polling.poll_source(source)
    assert run.ok, run.error_message
    assert run.fetched_count == len(fleet.items())
    assert all(h.get("X-Security-Token") == "<hidden>" for _, _, h in temporary_aksk.requests)


def test_it_fails_temporary_credentials_without_their_security_token(temporary_aksk):
    source = make_source("aksk", temporary_aksk, security_token_env=SECURITY_TOKEN_ENV)
    run = polling.poll_source(source)  # the variable the source names is not set
    assert_failed(run, source, "api-error", "APIGW.0301", "X-Security-Token")
    assert not Service.objects.exists()


def test_it_never_shows_a_wrong_security_token(temporary_aksk, monkeypatch):
    monkeypatch.setenv(SECURITY_TOKEN_ENV, "sts-token-of-another-key-77aa")
    source = make_source("aksk", temporary_aksk, security_token_env=SECURITY_TOKEN_ENV)
    run = polling.poll_source(source)
    assert_failed(run, source, "api-error", "APIGW.0301")
    assert "sts-token-of-another-key-77aa" not in run.error_message
    assert SECURITY_TOKEN not in run.error_message


# IAM user name and password


def test_it_polls_with_an_iam_password_token(iam, fleet):
    source = make_source("iam-password", iam)
    run = polling.poll_source(source)
    assert run.ok, run.error_message
    assert run.fetched_count == len(fleet.items()) == Service.objects.count()
    assert iam.logins == 1
    # The project came from the token: the source names none.
    assert paths(iam) == [LOGIN_PATH, LIST_PATH]


def test_it_reuses_the_iam_token_on_the_next_poll(iam):
    source = make_source("iam-password", iam)
    assert polling.poll_source(source).ok
    assert polling.poll_source(source).ok
    assert iam.logins == 1


def test_it_logs_in_again_once_the_token_has_expired(iam, clock):
    source = make_source("iam-password", iam)
    assert polling.poll_source(source).ok
    clock.advance(TTL + 1)  # expired on IAM's clock; the poller cannot know
    run = polling.poll_source(source)
    assert run.ok, run.error_message
    assert iam.logins == 2


def test_it_renews_a_revoked_token_once_and_succeeds(iam):
    source = make_source("iam-password", iam)
    assert polling.poll_source(source).ok
    iam.revoke_tokens()
    since = len(iam.requests)
    run = polling.poll_source(source)
    assert run.ok, run.error_message
    assert iam.logins == 2
    assert paths(iam, since) == [LIST_PATH, LOGIN_PATH, LIST_PATH]


def test_it_records_a_wrong_password_without_the_password(iam, monkeypatch):
    wrong = "not-the-pass-word-93e1"
    monkeypatch.setenv(PASSWORD_ENV, wrong)
    source = make_source("iam-password", iam)
    run = polling.poll_source(source)
    assert_failed(run, source, "api-error", "HTTP 401", USER, DOMAIN, "password is wrong")
    assert f"127.0.0.1:{iam.port}" in run.error_message  # which IAM said no
    assert wrong not in run.error_message and PASSWORD not in run.error_message
    assert iam.logins == 0
    assert paths(iam) == [LOGIN_PATH]  # no list request without a token


# Configuration the poller refuses before sending anything

MISSING = [
    ("token", "token_env"),
    ("aksk", "ak_env"),
    ("aksk", "sk_env"),
    ("iam-password", "password_env"),
]


@pytest.mark.parametrize(("mode", "field"), MISSING)
def test_it_reports_a_missing_secret_variable_without_calling_the_api(
    fleet, monkeypatch, mode, field
):
    with serve(mode, fleet) as server:
        source = make_source(mode, server)
        variable = getattr(source, field)
        monkeypatch.delenv(variable)
        run = polling.poll_source(source)
        assert_failed(run, source, "config", variable)
        assert server.request_count == 0


OUTSIDE = [
    ("token", "token_env"),
    ("aksk", "ak_env"),
    ("aksk", "sk_env"),
    ("aksk", "security_token_env"),
    ("iam-password", "password_env"),
]


@pytest.mark.parametrize(("mode", "field"), OUTSIDE)
def test_it_refuses_a_variable_outside_the_dashboard_prefixes(fleet, monkeypatch, mode, field):
    value = "django-secret-key-that-must-stay-home-5e2b"
    monkeypatch.setenv("DJANGO_TEST_SECRET_KEY", value)
    with serve(mode, fleet) as server:
        source = make_source(mode, server)
        # Straight into the database, as a bad migration or a shell session could.
        Source.objects.filter(pk=source.pk).update(**{field: "DJANGO_TEST_SECRET_KEY"})
        source.refresh_from_db()
        with pytest.raises(ValidationError):
            source.full_clean()  # what the admin would have said
        run = polling.poll_source(source)
        assert_failed(run, source, "config", "DJANGO_TEST_SECRET_KEY", field)
        assert value not in run.error_message
        assert server.request_count == 0


# Logs, at DEBUG, for a good and a failing poll in each mode


@pytest.mark.parametrize(
    ("mode", "variable", "wrong"),
    [
        ("token", TOKEN_ENV, "wrong-token-for-the-log-test-11"),
        ("aksk", SK_ENV, "wrong-secret-key-for-the-log-test-22"),
        ("iam-password", PASSWORD_ENV, "wrong-password-for-the-log-test-33"),
    ],
)
def test_it_logs_no_secret_at_debug(fleet, sent, monkeypatch, caplog, mode, variable, wrong):
    for name in (None, "dashboard", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)
    monkeypatch.setenv(SECURITY_TOKEN_ENV, SECURITY_TOKEN)
    with serve(mode, fleet, security_token=SECURITY_TOKEN) as server:
        fields = {"security_token_env": SECURITY_TOKEN_ENV} if mode == "aksk" else {}
        source = make_source(mode, server, **fields)
        good = polling.poll_source(source)
        monkeypatch.setenv(variable, wrong)
        bad = polling.poll_source(source)
    assert good.ok, good.error_message
    assert not bad.ok
    assert any(record.levelno == logging.DEBUG for record in caplog.records)
    assert sent or mode == "token"
    logged = caplog.text + "\n".join(
        f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )
    for secret in (TOKEN, SK, SECURITY_TOKEN, PASSWORD, wrong, *sent):
        assert secret not in logged
