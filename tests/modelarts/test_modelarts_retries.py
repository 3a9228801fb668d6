"""Retries, back-off, Retry-After and the poll deadline, over real HTTP against a tiny server
that answers a scripted sequence; and answers that must still end in a ModelArtsError."""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest
import requests
from local_http import LocalHTTPServer, QuietHandler, free_port

from dashboard.modelarts import (
    APIError,
    DeadlineError,
    InvalidQueryError,
    ModelArtsClient,
    ModelArtsError,
    ResponseError,
    RetryPolicy,
    TokenAuth,
    TransportError,
)
from dashboard.modelarts.retry import retry_after

PROJECT_ID = "0123456789abcdef0123456789abcdef"
TOKEN = "retry-test-token-8d2e4a"
EMPTY_LIST = {"total_count": 0, "count": 0, "services": []}


@dataclass
class Answer:
    status: int = 200
    body: bytes | str | dict = field(default_factory=lambda: EMPTY_LIST)
    headers: dict[str, str] = field(default_factory=dict)
    # Declare more bytes than are sent, then hang up: a body cut off mid-way.
    cut: bool = False

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return (self.body if isinstance(self.body, str) else json.dumps(self.body)).encode()


def error(status: int, code: str, message: str = "try later", **headers: str) -> Answer:
    return Answer(status, {"error_code": code, "error_msg": message}, headers)


def page(ids: range, total: int) -> Answer:
    services = [{"service_id": f"svc-{n:04d}", "service_name": f"s{n}"} for n in ids]
    return Answer(200, {"total_count": total, "count": len(services), "services": services})


class ScriptedAPI(LocalHTTPServer):
    """Answers each request with the next scripted Answer; the last one repeats."""

    def __init__(self, *answers: Answer) -> None:
        self.script = list(answers) or [Answer()]
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.on_request: Callable[[], None] = lambda: None
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def _next(self, path: str, headers: dict[str, str]) -> Answer:
        with self._lock:
            self.requests.append((path, headers))
            self.on_request()
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                answer = api._next(self.path, dict(self.headers))
                body = answer.encoded()
                # send_response_only: a scripted Date must be the only one.
                self.send_response_only(answer.status)
                headers = {
                    "Content-Type": "application/json",
                    "Date": self.date_time_string(),
                    **answer.headers,
                }
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body) + (100 if answer.cut else 0)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


class FakeTime:
    """time.monotonic and time.sleep in one: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def client_for(url: str, fake_time: FakeTime, **options: object) -> ModelArtsClient:
    options.setdefault("rng", random.Random(4))
    return ModelArtsClient(
        url,
        PROJECT_ID,
        TokenAuth(TOKEN),
        sleep=fake_time.sleep,
        monotonic=fake_time.monotonic,
        **options,
    )


def serve(*answers: Answer) -> ScriptedAPI:
    return ScriptedAPI(*answers)


# --- what is retried ------------------------------------------------------------------------


def test_it_retries_503s_until_the_api_answers(fake_time: FakeTime) -> None:
    with serve(
        error(503, "ModelArts.4700"), error(503, "ModelArts.4700"), page(range(3), 3)
    ) as api:
        snapshot = client_for(api.url, fake_time).fetch_all()

    assert len(snapshot.services) == 3
    assert len(api.requests) == 3
    # Full jitter: each wait is drawn from zero up to the doubling step.
    first, second = fake_time.sleeps
    assert 0 <= first <= 0.5 and 0 <= second <= 1.0


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_it_retries_server_errors_and_throttling(fake_time: FakeTime, status: int) -> None:
    with serve(error(status, "ModelArts.3505"), Answer()) as api:
        page_ = client_for(api.url, fake_time).list_services()

    assert page_.total_count == 0
    assert len(api.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409])
def test_it_never_retries_other_client_errors(fake_time: FakeTime, status: int) -> None:
    with (
        serve(error(status, "ModelArts.0101", "bad"), Answer()) as api,
        pytest.raises(APIError) as caught,
    ):
        client_for(api.url, fake_time).list_services()

    assert caught.value.status == status
    assert len(api.requests) == 1
    assert fake_time.sleeps == []
    assert "gave up" not in str(caught.value)


def test_it_does_not_retry_a_200_it_cannot_read(fake_time: FakeTime) -> None:
    with serve(Answer(200, "{not json"), Answer()) as api, pytest.raises(ResponseError):
        client_for(api.url, fake_time).list_services()

    assert len(api.requests) == 1


def test_it_honours_retry_after_in_seconds(fake_time: FakeTime) -> None:
    throttled = error(429, "ModelArts.4206", "too many requests", **{"Retry-After": "2"})

    with serve(throttled, Answer()) as api:
        client_for(api.url, fake_time).list_services()

    assert fake_time.sleeps == [2.0]
    assert len(api.requests) == 2


def test_it_caps_a_long_retry_after(fake_time: FakeTime) -> None:
    throttled = error(429, "APIGW.0308", "throttled", **{"Retry-After": "999"})

    with serve(throttled, Answer()) as api:
        client_for(api.url, fake_time, retry=RetryPolicy(retry_after_cap=12)).list_services()

    assert fake_time.sleeps == [12.0]


def test_it_reads_retry_after_as_an_http_date_against_the_server_clock(
    fake_time: FakeTime,
) -> None:
    # The dates are years off the local clock: only their difference may count.
    headers = {
        "Retry-After": "Wed, 21 Oct 2015 07:28:05 GMT",
        "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
    }

    with serve(Answer(503, "", headers), Answer()) as api:
        client_for(api.url, fake_time).list_services()

    assert fake_time.sleeps == [5.0]


@pytest.mark.parametrize(
    ("status", "value", "expected"),
    [
        (429, "3", 3.0),
        (429, "0", 0.0),
        (503, "1.5", 1.5),
        (429, "soon", None),
        (429, "-4", None),
        (500, "3", None),  # Retry-After means nothing on a 500
        (429, "Thu, 01 Jan 1970 00:00:00 GMT", 0.0),  # already past
    ],
)
def test_it_reads_only_meaningful_retry_after_values(
    status: int, value: str, expected: float | None
) -> None:
    assert retry_after(status, {"Retry-After": value}) == expected


def host_of(api) -> str:
    return urlsplit(api.url).netloc


def test_it_gives_up_after_the_attempts_with_a_message_that_says_so(fake_time: FakeTime) -> None:
    throttled = error(429, "ModelArts.4206", "too many requests", **{"X-Request-Id": "r9"})

    with serve(throttled) as api, pytest.raises(APIError) as caught:
        client_for(api.url, fake_time).list_services()

    assert len(api.requests) == 4
    assert len(fake_time.sleeps) == 3
    elapsed = sum(fake_time.sleeps)
    assert str(caught.value) == (
        f"ModelArts.4206: too many requests (HTTP 429, from {host_of(api)}, request r9)"
        f" — gave up after 4 attempts in {elapsed:.1f} s"
    )
    assert (caught.value.status, caught.value.code) == (429, "ModelArts.4206")
    assert isinstance(caught.value.__cause__, APIError)


def test_it_does_not_retry_at_all_with_one_attempt(fake_time: FakeTime) -> None:
    with serve(error(503, "ModelArts.4700", "stopping")) as api, pytest.raises(APIError) as caught:
        client_for(api.url, fake_time, retry=RetryPolicy(attempts=1)).list_services()

    assert len(api.requests) == 1
    assert str(caught.value) == f"ModelArts.4700: stopping (HTTP 503, from {host_of(api)})"


def test_it_retries_a_refused_connection_then_reports_it(fake_time: FakeTime) -> None:
    port = free_port()
    client = client_for(f"http://127.0.0.1:{port}", fake_time, retry=RetryPolicy(attempts=3))

    with pytest.raises(TransportError) as caught:
        client.list_services()

    assert str(caught.value).startswith(
        f"could not reach 127.0.0.1:{port}: connection refused — gave up after 3 attempts in "
    )
    assert len(fake_time.sleeps) == 2


def test_it_retries_a_body_cut_off_mid_way(fake_time: FakeTime) -> None:
    with serve(Answer(200, json.dumps(EMPTY_LIST), cut=True), page(range(2), 2)) as api:
        page_ = client_for(api.url, fake_time).list_services()

    assert page_.total_count == 2
    assert len(api.requests) == 2


def test_it_reports_a_body_that_stays_cut_off(fake_time: FakeTime) -> None:
    cut = Answer(200, '{"total_count": 4, "serv', cut=True)

    with serve(cut) as api, pytest.raises(TransportError) as caught:
        client_for(api.url, fake_time, retry=RetryPolicy(attempts=2)).list_services()

    assert "broke off mid-response" in str(caught.value)
    assert "gave up after 2 attempts" in str(caught.value)


def test_it_retries_a_proxys_html_502_and_quotes_it(fake_time: FakeTime) -> None:
    nginx = "<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>"

    proxy = Answer(502, nginx, {"Content-Type": "text/html"})

    with serve(proxy) as api, pytest.raises(APIError) as caught:
        client_for(api.url, fake_time, retry=RetryPolicy(attempts=2)).list_services()

    assert str(caught.value).startswith(
        f"HTTP 502: 502 Bad Gateway nginx (from {host_of(api)}) — gave up after 2 attempts"
    )
    assert len(api.requests) == 2


def test_it_logs_each_retry_with_its_reason_and_no_secrets(
    fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    with serve(error(503, "ModelArts.4700", "upgrade"), Answer()) as api:
        client_for(api.url, fake_time).list_services()

    retries = [r for r in caplog.records if r.levelno == logging.INFO and "retrying" in r.message]
    assert len(retries) == 1
    assert f"ModelArts.4700: upgrade (HTTP 503, from {host_of(api)})" in retries[0].message
    assert "attempt 2 of 4" in retries[0].message
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


# --- the deadline ---------------------------------------------------------------------------


def test_it_stops_retrying_at_the_deadline_and_never_sleeps_past_it(fake_time: FakeTime) -> None:
    policy = RetryPolicy(attempts=50, backoff=1.0, max_backoff=1.0)
    deadline = fake_time.now + 3.5

    with serve(error(503, "ModelArts.4700", "stopping")) as api, pytest.raises(APIError) as caught:
        client_for(api.url, fake_time, retry=policy).fetch_all(deadline=deadline)

    assert fake_time.now < deadline
    assert len(api.requests) == len(fake_time.sleeps) + 1 < 50
    message = str(caught.value)
    assert message.startswith(
        f"ModelArts.4700: stopping (HTTP 503, from {host_of(api)}) — poll deadline of 3.5 s"
    )
    assert "reached on page 1 after" in message


def test_it_does_not_wait_for_a_retry_after_beyond_the_deadline(fake_time: FakeTime) -> None:
    throttled = error(429, "ModelArts.4206", "too many requests", **{"Retry-After": "20"})

    with serve(throttled) as api, pytest.raises(APIError, match="poll deadline of 10 s"):
        client_for(api.url, fake_time).fetch_all(deadline=fake_time.now + 10)

    assert fake_time.sleeps == []
    assert len(api.requests) == 1


def test_it_starts_no_page_after_the_deadline(fake_time: FakeTime) -> None:
    answers = [page(range(n * 2, n * 2 + 2), 10) for n in range(5)]

    with serve(*answers) as api:
        # Each request takes one (fake) second.
        api.on_request = lambda: setattr(fake_time, "now", fake_time.now + 1)
        with pytest.raises(DeadlineError) as caught:
            client_for(api.url, fake_time).fetch_all(page_size=2, deadline=fake_time.now + 2.5)

    assert len(api.requests) == 3
    assert str(caught.value) == (
        f"127.0.0.1:{api.url.rsplit(':', 1)[1]}: poll deadline of 2.5 s reached on page 4,"
        " after reading 6 of 10 services"
    )
    assert isinstance(caught.value, TransportError)


def test_it_sends_nothing_when_the_deadline_has_passed(fake_time: FakeTime) -> None:
    with serve() as api, pytest.raises(DeadlineError, match="on page 1"):
        client_for(api.url, fake_time).fetch_all(deadline=fake_time.now - 1)

    assert api.requests == []


def test_it_waits_for_an_answer_no_longer_than_the_deadline() -> None:
    # Listening but never answering; the read timeout alone would be 30 s.
    with socket.create_server(("127.0.0.1", 0)) as sock:
        client = ModelArtsClient(
            f"http://127.0.0.1:{sock.getsockname()[1]}", PROJECT_ID, TokenAuth(TOKEN)
        )
        started = time.monotonic()
        with pytest.raises(TransportError, match="poll deadline of 0.3 s reached on page 1"):
            client.fetch_all(deadline=started + 0.3)

    assert time.monotonic() - started < 2


def test_it_rejects_a_deadline_that_is_not_a_number(fake_time: FakeTime) -> None:
    with pytest.raises(InvalidQueryError, match="deadline"):
        client_for("http://127.0.0.1:9", fake_time).fetch_all(deadline="soon")  # type: ignore[arg-type]


# --- the policy -----------------------------------------------------------------------------


def test_it_grows_the_back_off_exponentially_up_to_the_maximum() -> None:
    policy = RetryPolicy(backoff=0.5, max_backoff=8.0)

    class Highest(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    assert [policy.delay(n, Highest()) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 8, 8]
    assert policy.delay(1_000, Highest()) == 8.0
    assert policy.delay(3, Highest(), retry_after=45) == 30.0


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": True}, "attempts"),
        ({"attempts": 2.5}, "attempts"),
        ({"backoff": -1}, "backoff"),
        ({"max_backoff": float("inf")}, "max_backoff"),
        ({"backoff": 2, "max_backoff": 1}, "max_backoff"),
        ({"retry_after_cap": "30"}, "retry_after_cap"),
    ],
)
def test_it_rejects_a_bad_retry_policy(options: dict, problem: str) -> None:
    with pytest.raises(InvalidQueryError, match=problem):
        RetryPolicy(**options)


def test_it_rejects_a_retry_that_is_not_a_policy() -> None:
    with pytest.raises(InvalidQueryError, match="RetryPolicy"):
        ModelArtsClient("http://m.example.com", PROJECT_ID, TokenAuth(TOKEN), retry=3)  # type: ignore[arg-type]


# --- answers that must still be a ModelArtsError ------------------------------------------


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (Answer(200, b"[" * 100_000 + b"]" * 100_000), ResponseError),
        (Answer(200, b'{"total_count": 1, "services": ["\xff\xfe"]}'), ResponseError),
        (Answer(200, b'{"total_count": ' + b"9" * 5000 + b"}"), ResponseError),
        (Answer(200, b"\xef\xbb\xbf" + json.dumps(EMPTY_LIST).encode()), None),
        (Answer(500, b'{"error": ' * 50_000), APIError),
        (Answer(400, b"\x80\x81 not utf-8 <b>at all</b>"), APIError),
        (Answer(200, {"total_count": "many", "services": None}), ResponseError),
    ],
    ids=["deep-json", "bad-utf8", "huge-int", "utf8-bom", "deep-error", "bad-error", "types"],
)
def test_it_turns_every_odd_body_into_a_modelarts_error(
    fake_time: FakeTime, answer: Answer, kind: type[ModelArtsError] | None
) -> None:
    with serve(answer) as api:
        client = client_for(api.url, fake_time, retry=RetryPolicy(attempts=1))
        if kind is None:
            assert client.list_services().total_count == 0
            return
        with pytest.raises(kind) as caught:
            client.list_services()

    assert len(str(caught.value)) < 1000


def test_it_reports_a_short_body_that_slipped_past_the_http_library(fake_time: FakeTime) -> None:
    class ShortBodies(requests.adapters.HTTPAdapter):
        def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
            response = super().send(request, **kwargs)
            response._content = response.content[:10]
            return response

    session = requests.Session()
    session.mount("http://", ShortBodies())

    with serve(page(range(5), 5)) as api, pytest.raises(TransportError) as caught:
        client_for(
            api.url, fake_time, session=session, retry=RetryPolicy(attempts=1)
        ).list_services()

    assert "the body was cut off after 10 of" in str(caught.value)
