"""IAM password tokens: login, caching, renewal before expiry and once on a 401, and secrets
that never show. Against a tiny IAM + ModelArts stub over real HTTP, then the simulator."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler

import pytest
from local_http import LocalHTTPServer, QuietHandler, free_port

from dashboard.devtools.simulator import Fleet, ManualClock, SimulatorServer
from dashboard.modelarts import (
    APIError,
    AuthError,
    IamPasswordAuth,
    InvalidQueryError,
    ModelArtsClient,
    ResponseError,
    RetryPolicy,
    TokenAuth,
    TransportError,
)

PROJECT_ID = "0123456789abcdef0123456789abcdef"
PASSWORD = "correct-horse-battery-7731"
DAY = 86400.0


class Clock:
    def __init__(self, now: float = 1_767_225_600.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeIam(LocalHTTPServer):
    """IAM's token API and a ModelArts list API that takes only the tokens IAM issued."""

    def __init__(self, clock: Clock, *, ttl: float = DAY) -> None:
        self.clock, self.ttl = clock, ttl
        self.skew = 0.0  # how far IAM's clock is ahead of ours
        self.login_delay = 0.0
        self.echo_password = False
        self.token_reply: dict | None = None  # replaces the 201's body
        self.subject_header = True
        self.reject_every_token = False
        self.logins: list[tuple[str, dict, str]] = []  # (path, body, content type)
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.listed_with: list[str | None] = []
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def revoke_all(self) -> None:
        self.valid.clear()

    def login(self, path: str, body: dict, content_type: str) -> tuple[int, dict, dict]:
        time.sleep(self.login_delay)
        with self._lock:
            self.logins.append((path, body, content_type))
            user = body["auth"]["identity"]["password"]["user"]
            if user["password"] != PASSWORD:
                shown = f" ({user['password']})" if self.echo_password else ""
                message = f"The username or password is wrong.{shown}"
                return (
                    401,
                    {"error": {"code": 401, "message": message, "title": "Unauthorized"}},
                    {},
                )
            token = f"MIItoken{len(self.issued):04d}" + "x" * 40
            self.issued.append(token)
            self.valid.add(token)
        now = self.clock() + self.skew
        reply = self.token_reply or {
            "token": {
                "expires_at": iso(now + self.ttl),
                "issued_at": iso(now),
                "methods": ["password"],
                "project": {"id": PROJECT_ID, "name": "cn-north-4"},
            }
        }
        headers = {"X-Subject-Token": token} if self.subject_header else {}
        return 201, reply, headers

    def list(self, token: str | None) -> tuple[int, dict, dict]:
        self.listed_with.append(token)
        if self.reject_every_token or token not in self.valid:
            error = {"error_code": "ModelArts.0203", "error_msg": "The token is invalid."}
            return 401, error, {}
        return 200, {"total_count": 0, "count": 0, "services": []}, {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        iam = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                content_type = self.headers.get("Content-Type", "")
                self._reply(*iam.login(self.path, body, content_type))

            def do_GET(self) -> None:
                self._reply(*iam.list(self.headers.get("X-Auth-Token")))

            def _reply(self, status: int, body: dict, headers: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(data))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


@pytest.fixture
def local_clock() -> Clock:
    return Clock()


@pytest.fixture
def iam(local_clock: Clock) -> Iterator[FakeIam]:
    with FakeIam(local_clock) as server:
        yield server


def auth_for(url: str, clock: Clock | ManualClock, password: str = PASSWORD, **options: object):
    return IamPasswordAuth(url, "acme", "alice", password, "cn-north-4", clock=clock, **options)


def client_for(url: str, auth: object, **options: object) -> ModelArtsClient:
    options.setdefault("retry", RetryPolicy(attempts=1))
    return ModelArtsClient(url, PROJECT_ID, auth, **options)  # type: ignore[arg-type]


# --- login and caching ----------------------------------------------------------------------


def test_it_sends_the_documented_login_request(iam: FakeIam, local_clock: Clock) -> None:
    auth_for(iam.url + "/", local_clock).headers_for("GET", "http://m/x", {})

    path, body, content_type = iam.logins[0]
    assert path == "/v3/auth/tokens?nocatalog=true"
    assert content_type == "application/json;charset=utf8"
    assert body == {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "alice", "password": PASSWORD, "domain": {"name": "acme"}}
                },
            },
            "scope": {"project": {"name": "cn-north-4"}},
        }
    }


def test_it_logs_in_once_for_many_requests(iam: FakeIam, local_clock: Clock) -> None:
    client = client_for(iam.url, auth_for(iam.url, local_clock))

    for _ in range(5):
        client.list_services()

    assert len(iam.logins) == 1
    assert iam.listed_with == [iam.issued[0]] * 5


def test_it_learns_the_project_id_from_the_token(iam: FakeIam, local_clock: Clock) -> None:
    auth = auth_for(iam.url, local_clock)
    assert auth.project_id is None

    auth.headers_for("GET", "http://m/x", {})

    assert auth.project_id == PROJECT_ID


def test_it_renews_the_token_an_hour_before_it_expires(iam: FakeIam, local_clock: Clock) -> None:
    auth = auth_for(iam.url, local_clock)
    first = auth.headers_for("GET", "http://m/x", {})["X-Auth-Token"]

    local_clock.now += DAY - 3600 - 1
    assert auth.headers_for("GET", "http://m/x", {})["X-Auth-Token"] == first
    local_clock.now += 1
    second = auth.headers_for("GET", "http://m/x", {})["X-Auth-Token"]

    assert second != first
    assert len(iam.logins) == 2


def test_it_renews_a_token_shorter_than_renew_before_at_half_its_life(
    iam: FakeIam, local_clock: Clock
) -> None:
    iam.ttl = 60
    auth = auth_for(iam.url, local_clock)
    auth.headers_for("GET", "http://m/x", {})

    local_clock.now += 29
    auth.headers_for("GET", "http://m/x", {})
    assert len(iam.logins) == 1
    local_clock.now += 1
    auth.headers_for("GET", "http://m/x", {})
    assert len(iam.logins) == 2


def test_it_measures_the_token_lifetime_by_iams_clock(iam: FakeIam, local_clock: Clock) -> None:
    # IAM's clock runs 23 hours ahead: by ours the token would look nearly expired at once.
    iam.skew = 23 * 3600
    auth = auth_for(iam.url, local_clock)
    auth.headers_for("GET", "http://m/x", {})

    local_clock.now += 3600
    auth.headers_for("GET", "http://m/x", {})

    assert len(iam.logins) == 1


def test_it_logs_in_once_when_threads_race_for_the_first_token(
    iam: FakeIam, local_clock: Clock
) -> None:
    iam.login_delay = 0.2
    auth = auth_for(iam.url, local_clock)
    tokens: list[str] = []

    def work() -> None:
        tokens.append(auth.headers_for("GET", "http://m/x", {})["X-Auth-Token"])

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(iam.logins) == 1
    assert tokens == [iam.issued[0]] * 8


# --- a 401 from ModelArts -------------------------------------------------------------------


def test_it_renews_the_token_and_retries_once_when_modelarts_rejects_it(
    iam: FakeIam, local_clock: Clock
) -> None:
    client = client_for(iam.url, auth_for(iam.url, local_clock))
    client.list_services()
    iam.revoke_all()  # as when the password changes or the user is disabled

    page = client.list_services()

    assert page.total_count == 0
    assert iam.listed_with == [iam.issued[0], iam.issued[0], iam.issued[1]]
    assert len(iam.logins) == 2


def test_it_retries_only_once_when_the_fresh_token_is_rejected_too(
    iam: FakeIam, local_clock: Clock
) -> None:
    iam.reject_every_token = True
    client = client_for(iam.url, auth_for(iam.url, local_clock), retry=RetryPolicy())

    with pytest.raises(APIError) as caught:
        client.list_services()

    assert (caught.value.status, caught.value.code) == (401, "ModelArts.0203")
    assert len(iam.listed_with) == 2
    assert len(iam.logins) == 2


def test_it_does_not_retry_a_rejected_static_token(iam: FakeIam) -> None:
    with pytest.raises(APIError, match="ModelArts.0203"):
        client_for(
            iam.url, TokenAuth("static-token-never-valid"), retry=RetryPolicy()
        ).list_services()

    assert iam.listed_with == ["static-token-never-valid"]


def test_it_keeps_a_token_another_thread_renewed_already(iam: FakeIam, local_clock: Clock) -> None:
    auth = auth_for(iam.url, local_clock)
    current = auth.headers_for("GET", "http://m/x", {})["X-Auth-Token"]

    # A request that failed with an older token must not throw away the current one.
    assert auth.invalidate({"x-auth-token": "an-older-token"}) is True
    assert auth.headers_for("GET", "http://m/x", {})["X-Auth-Token"] == current
    assert auth.invalidate({"X-Auth-Token": current}) is True
    assert auth.headers_for("GET", "http://m/x", {})["X-Auth-Token"] != current


# --- when IAM says no -----------------------------------------------------------------------


def test_it_reports_a_wrong_password_without_showing_it(iam: FakeIam, local_clock: Clock) -> None:
    iam.echo_password = True
    wrong = "wrong-password-5521"
    client = client_for(
        iam.url, auth_for(iam.url, local_clock, password=wrong), retry=RetryPolicy()
    )

    with pytest.raises(AuthError) as caught:
        client.list_services()

    error = caught.value
    assert isinstance(error, APIError)
    assert error.status == 401
    assert str(error) == (
        f"HTTP 401: IAM at {iam.url.removeprefix('http://')} gave no token to user 'alice' of"
        " account 'acme' in project 'cn-north-4': The username or password is wrong. ([hidden])"
    )
    assert wrong not in repr(error)
    assert len(iam.logins) == 1  # a wrong password is not worth a retry
    assert iam.listed_with == []


def test_it_reports_an_unreachable_iam(local_clock: Clock) -> None:
    port = free_port()

    with pytest.raises(TransportError) as caught:
        auth_for(f"http://127.0.0.1:{port}", local_clock).headers_for("GET", "http://m/x", {})

    assert str(caught.value) == f"could not reach IAM at 127.0.0.1:{port}: connection refused"


def test_it_retries_an_unreachable_iam_like_an_unreachable_api(local_clock: Clock) -> None:
    port = free_port()
    auth = auth_for(f"http://127.0.0.1:{port}", local_clock)
    sleeps: list[float] = []
    client = client_for(
        "http://127.0.0.1:9", auth, retry=RetryPolicy(attempts=3), sleep=sleeps.append
    )

    with pytest.raises(TransportError, match="could not reach IAM .* gave up after 3 attempts"):
        client.list_services()

    assert len(sleeps) == 2


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"subject_header": False}, "X-Subject-Token header is missing"),
        ({"token_reply": {"token": {"expires_at": "tomorrow"}}}, "expires_at 'tomorrow'"),
        ({"token_reply": {"access": {}}}, "no 'token' object"),
    ],
)
def test_it_rejects_a_token_answer_it_cannot_use(
    iam: FakeIam, local_clock: Clock, change: dict, problem: str
) -> None:
    for name, value in change.items():
        setattr(iam, name, value)

    with pytest.raises(ResponseError, match="IAM at .* issued an unusable token: .*" + problem):
        auth_for(iam.url, local_clock).headers_for("GET", "http://m/x", {})


def test_it_never_shows_the_password_or_a_token(
    iam: FakeIam, local_clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    iam.echo_password = True
    auth = auth_for(iam.url, local_clock)
    client = client_for(iam.url, auth)
    client.list_services()
    iam.revoke_all()
    client.list_services()
    iam.reject_every_token = True
    failures = []
    with pytest.raises(APIError) as rejected:
        client.list_services()
    failures.append(rejected.value)
    with pytest.raises(AuthError) as refused:
        client_for(iam.url, auth_for(iam.url, local_clock, password=PASSWORD + "!")).list_services()
    failures.append(refused.value)

    shown = [repr(auth), repr(client)] + [f"{e} {e!r}" for e in failures]
    shown += [record.getMessage() for record in caplog.records]
    shown += [caplog.text]
    secrets = [PASSWORD, *iam.issued]
    assert len(iam.issued) == 3
    assert not [secret for secret in secrets for text in shown if secret in text]
    assert any("obtained an IAM token" in record.getMessage() for record in caplog.records)


# --- construction ---------------------------------------------------------------------------


def test_it_keeps_the_password_out_of_its_repr(local_clock: Clock) -> None:
    auth = auth_for("https://iam.example.com", local_clock)

    assert repr(auth) == (
        "IamPasswordAuth('https://iam.example.com', domain='acme', username='alice',"
        " project_name='cn-north-4', password=<hidden>)"
    )


@pytest.mark.parametrize(
    ("arguments", "options", "problem"),
    [
        (("", "acme", "alice", PASSWORD, "cn-north-4"), {}, "iam_endpoint is empty"),
        (("iam.example.com", "acme", "alice", PASSWORD, "p"), {}, "iam_endpoint must be an http"),
        (("https://u:pw@iam.example.com", "a", "b", PASSWORD, "p"), {}, "iam_endpoint must not"),
        (("https://iam.example.com", " ", "alice", PASSWORD, "p"), {}, "domain is empty"),
        (("https://iam.example.com", "acme", "", PASSWORD, "p"), {}, "username is empty"),
        (("https://iam.example.com", "acme", "alice", "", "p"), {}, "password is empty"),
        (("https://iam.example.com", "acme", "alice", PASSWORD, None), {}, "project_name"),
        (("https://iam.example.com", "a", "b", PASSWORD, "p"), {"timeout": 0}, "timeout"),
        (
            ("https://iam.example.com", "a", "b", PASSWORD, "p"),
            {"renew_before": -1},
            "renew_before",
        ),
    ],
)
def test_it_rejects_bad_arguments(arguments: tuple, options: dict, problem: str) -> None:
    with pytest.raises(InvalidQueryError, match=problem) as caught:
        IamPasswordAuth(*arguments, **options)

    assert PASSWORD not in str(caught.value)


# --- against the simulator ------------------------------------------------------------------


@pytest.fixture
def iam_simulator(fleet: Fleet) -> Iterator[SimulatorServer]:
    with SimulatorServer(
        fleet,
        project_id=PROJECT_ID,
        auth="iam",
        iam_users={("acme", "alice"): PASSWORD},
        token_ttl=600,
    ) as server:
        yield server


def test_it_reads_the_fleet_with_a_password_login(
    iam_simulator: SimulatorServer, fleet: Fleet, clock: ManualClock
) -> None:
    auth = auth_for(iam_simulator.url, clock)

    snapshot = client_for(iam_simulator.url, auth).fetch_all(page_size=50)

    assert snapshot.complete and len(snapshot.services) == len(fleet.items())
    assert iam_simulator.logins == 1
    assert auth.project_id == PROJECT_ID


def test_it_renews_before_the_simulated_token_expires(
    iam_simulator: SimulatorServer, clock: ManualClock
) -> None:
    client = client_for(iam_simulator.url, auth_for(iam_simulator.url, clock))
    client.list_services()

    clock.advance(599)
    client.list_services()

    assert iam_simulator.logins == 2


def test_it_recovers_when_the_simulator_revokes_its_tokens(
    iam_simulator: SimulatorServer, clock: ManualClock
) -> None:
    client = client_for(iam_simulator.url, auth_for(iam_simulator.url, clock))
    client.list_services()
    iam_simulator.revoke_tokens()

    assert client.list_services().total_count > 0
    assert iam_simulator.logins == 2
