"""ModelArtsClient over real HTTP: against the simulator, and against tiny stub servers for the
failures the simulator cannot produce yet (HTML answers, hangs, closed ports)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest
import requests
from local_http import LocalHTTPServer, QuietHandler, free_port

from dashboard.devtools.simulator import Fleet, SimulatorServer
from dashboard.modelarts import (
    KNOWN_STATUSES,
    APIError,
    InvalidQueryError,
    ModelArtsClient,
    ResponseError,
    RetryPolicy,
    ServiceQuery,
    ServiceRecord,
    TokenAuth,
    TransportError,
)

# The same values as tests/conftest.py, which is not importable as a module.
PROJECT_ID = "0123456789abcdef0123456789abcdef"
TOKEN = "test-token-5f0e2c"


def client_for(url: str, token: str = TOKEN, **options: object) -> ModelArtsClient:
    # One request per call: retries have their own tests (test_modelarts_retries.py).
    options.setdefault("retry", RetryPolicy(attempts=1))
    return ModelArtsClient(url, PROJECT_ID, TokenAuth(token), **options)


def fleet_ids(fleet: Fleet) -> set[str]:
    return {item["service_id"] for item in fleet.items()}


class StubAPI(LocalHTTPServer):
    """An HTTP server that records each request and answers with one canned response."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.status, self.body, self.headers = 200, b"", {"Content-Type": "application/json"}
        super().__init__(self._handler())

    def reply(self, status: int, body: str | dict, **headers: str) -> None:
        self.status = status
        self.body = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.headers = headers or self.headers

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                stub.requests.append((self.path, dict(self.headers)))
                self.send_response(stub.status)
                for name, value in stub.headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.send_header("Content-Length", str(len(stub.body)))
                self.end_headers()
                self.wfile.write(stub.body)

        return Handler


@pytest.fixture
def stub() -> Iterator[StubAPI]:
    with StubAPI() as server:
        yield server


@pytest.fixture
def record_simulator(fleet: Fleet) -> Iterator[SimulatorServer]:
    with SimulatorServer(
        fleet, project_id=PROJECT_ID, auth="token", token=TOKEN, offset_mode="record"
    ) as server:
        yield server


# --- one request, against the simulator ---------------------------------------------------


def test_it_lists_the_whole_fleet_in_one_request(simulator: SimulatorServer, fleet: Fleet) -> None:
    page = client_for(simulator.url).list_services()

    assert page.total_count == page.count == len(fleet_ids(fleet))
    assert {service.service_id for service in page.services} == fleet_ids(fleet)
    assert all(service.status in KNOWN_STATUSES for service in page.services)


def test_it_filters_by_service_id(simulator: SimulatorServer, fleet: Fleet) -> None:
    wanted = fleet.items()[5]

    page = client_for(simulator.url).list_services(ServiceQuery(service_id=wanted["service_id"]))

    assert [service.raw for service in page.services] == [wanted]


def test_it_filters_by_part_of_the_service_name(simulator: SimulatorServer, fleet: Fleet) -> None:
    expected = {i["service_id"] for i in fleet.items() if "prod" in i["service_name"]}

    page = client_for(simulator.url).list_services(ServiceQuery(service_name="prod"))

    assert expected
    assert {service.service_id for service in page.services} == expected
    assert page.total_count == len(expected)


def test_it_filters_by_model_id(simulator: SimulatorServer, fleet: Fleet) -> None:
    wanted = fleet.items()[3]["service_id"]
    model_id = fleet.model_id(fleet.index_of(wanted))

    page = client_for(simulator.url).list_services(ServiceQuery(model_id=model_id))

    assert [service.service_id for service in page.services] == [wanted]


@pytest.mark.parametrize("infer_type", ["real-time", "batch", "edge"])
def test_it_filters_by_infer_type(
    simulator: SimulatorServer, fleet: Fleet, infer_type: str
) -> None:
    expected = {i["service_id"] for i in fleet.items() if i["infer_type"] == infer_type}

    page = client_for(simulator.url).list_services(ServiceQuery(infer_type=infer_type))

    assert {service.service_id for service in page.services} == expected


@pytest.mark.parametrize("status", ["running", "finished", "failed", "deploying"])
def test_it_filters_by_status(simulator: SimulatorServer, fleet: Fleet, status: str) -> None:
    expected = {i["service_id"] for i in fleet.items() if i["status"] == status}

    page = client_for(simulator.url).list_services(ServiceQuery(status=status))

    assert {service.service_id for service in page.services} == expected
    assert all(service.status == status for service in page.services)


def test_it_filters_by_workspace(simulator: SimulatorServer, fleet: Fleet) -> None:
    client = client_for(simulator.url)

    assert client.list_services(ServiceQuery(workspace_id="0")).total_count == len(fleet_ids(fleet))
    with pytest.raises(APIError) as caught:
        client.list_services(ServiceQuery(workspace_id="7"))
    assert (caught.value.status, caught.value.code) == (400, "ModelArts.0102")


@pytest.mark.parametrize("sort_by", ["publish_at", "service_name", "transition_at"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_it_sorts_both_ways(simulator: SimulatorServer, sort_by: str, order: str) -> None:
    page = client_for(simulator.url).list_services(ServiceQuery(sort_by=sort_by, order=order))

    keys = [getattr(service, sort_by) for service in page.services]
    assert keys == sorted(keys, reverse=order == "desc")
    assert len(set(keys)) > 1


def test_it_takes_the_sdk_parameter_names(simulator: SimulatorServer) -> None:
    page = client_for(simulator.url).get_service_list(
        service_status="running", offset="0", limit="5", sort_by="service_name", order="asc"
    )

    assert page.count == len(page.services) == 5
    assert page.total_count > 5
    assert {service.status for service in page.services} == {"running"}


def test_it_reports_a_wrong_token_without_showing_it(simulator: SimulatorServer) -> None:
    secret = "wrong-token-do-not-print-9c1d"

    with pytest.raises(APIError) as caught:
        client_for(simulator.url, token=secret).list_services()

    error = caught.value
    assert (error.status, error.code) == (401, "ModelArts.0203")
    assert error.request_id
    assert str(error).startswith("ModelArts.0203: ")
    assert f"(HTTP 401, from {error.host}, request {error.request_id})" in str(error)
    assert error.host == urlsplit(simulator.url).netloc
    assert secret not in str(error) and secret not in repr(error)


def test_it_reports_a_missing_token(simulator: SimulatorServer) -> None:
    class NoAuth:
        def headers_for(self, method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
            return headers

    with pytest.raises(APIError) as caught:
        ModelArtsClient(simulator.url, PROJECT_ID, NoAuth()).list_services()

    assert (caught.value.status, caught.value.code) == (401, "ModelArts.0201")


def test_it_reports_a_project_the_token_is_not_for(simulator: SimulatorServer) -> None:
    client = ModelArtsClient(simulator.url, "f" * 32, TokenAuth(TOKEN))

    with pytest.raises(APIError) as caught:
        client.list_services()

    assert (caught.value.status, caught.value.code) == (403, "ModelArts.0210")


def test_it_reports_a_filter_value_the_api_rejects(simulator: SimulatorServer) -> None:
    # Accepted by the client on purpose (statuses are an open set); the API has the last word.
    with pytest.raises(APIError) as caught:
        client_for(simulator.url).list_services(ServiceQuery(status="upgrading"))

    assert (caught.value.status, caught.value.code) == (400, "ModelArts.0101")


# --- paging ---------------------------------------------------------------------------------


def test_it_fetches_every_page_by_page_index(simulator: SimulatorServer, fleet: Fleet) -> None:
    snapshot = client_for(simulator.url).fetch_all(page_size=7)

    assert {service.service_id for service in snapshot.services} == fleet_ids(fleet)
    assert len(snapshot.services) == snapshot.total_count == len(fleet_ids(fleet))
    assert snapshot.pages == -(-snapshot.total_count // 7)
    assert (snapshot.duplicates, snapshot.complete) == (0, True)


def test_it_fetches_every_page_by_record_offset(
    record_simulator: SimulatorServer, fleet: Fleet
) -> None:
    client = client_for(record_simulator.url, offset_mode="record")

    snapshot = client.fetch_all(page_size=9)

    assert {service.service_id for service in snapshot.services} == fleet_ids(fleet)
    assert snapshot.pages == -(-snapshot.total_count // 9)
    assert (snapshot.duplicates, snapshot.complete) == (0, True)


def test_it_keeps_the_api_order_across_pages(simulator: SimulatorServer) -> None:
    client = client_for(simulator.url)
    query = ServiceQuery(sort_by="service_name", order="asc")

    snapshot = client.fetch_all(query, page_size=10)

    assert snapshot.services == client.list_services(query).services


def test_it_keeps_the_filters_while_paging(simulator: SimulatorServer, fleet: Fleet) -> None:
    expected = {i["service_id"] for i in fleet.items() if i["status"] == "running"}
    query = ServiceQuery(status="running", offset=5, limit=1)

    snapshot = client_for(simulator.url).fetch_all(query, page_size=10)

    assert {service.service_id for service in snapshot.services} == expected
    assert snapshot.complete


def test_it_needs_no_second_page_when_the_first_has_everything(
    simulator: SimulatorServer,
) -> None:
    snapshot = client_for(simulator.url).fetch_all()

    assert (snapshot.pages, snapshot.complete) == (1, True)


def test_it_survives_guessing_page_index_when_offset_counts_records(
    record_simulator: SimulatorServer, fleet: Fleet
) -> None:
    snapshot = client_for(record_simulator.url, offset_mode="page").fetch_all(page_size=100)

    # Pages overlap almost entirely, but each adds one new service, so nothing is lost.
    assert {service.service_id for service in snapshot.services} == fleet_ids(fleet)
    assert snapshot.duplicates > 0
    assert snapshot.complete


def test_it_admits_an_incomplete_snapshot_when_offset_means_pages(
    simulator: SimulatorServer,
) -> None:
    snapshot = client_for(simulator.url, offset_mode="record").fetch_all(page_size=25)

    # The second request asks for page 25, far past the end: it is empty, so paging stops.
    assert (len(snapshot.services), snapshot.pages) == (25, 2)
    assert snapshot.complete is False


def test_it_stops_after_max_pages(simulator: SimulatorServer) -> None:
    snapshot = client_for(simulator.url, max_pages=2).fetch_all(page_size=10)

    assert (len(snapshot.services), snapshot.pages, snapshot.complete) == (20, 2, False)


def test_it_keeps_what_keep_makes_of_each_new_service(simulator: SimulatorServer) -> None:
    client = client_for(simulator.url)
    kept: list[str] = []

    def keep(record: ServiceRecord) -> str:
        kept.append(record.service_id)
        return record.service_id

    snapshot = client.fetch_all(page_size=10, keep=keep)

    assert snapshot.services == tuple(kept)
    assert list(snapshot.services) == [r.service_id for r in client.fetch_all().services]


def test_it_asks_for_each_page_once_and_no_page_more(
    simulator: SimulatorServer, fleet: Fleet
) -> None:
    # The next page is asked for while this one is kept: never speculatively past the end.
    before = len(simulator.requests)

    snapshot = client_for(simulator.url).fetch_all(page_size=10, keep=lambda record: record)

    offsets = [r.path.split("offset=")[1].split("&")[0] for r in simulator.requests[before:]]
    assert offsets == [str(page) for page in range(snapshot.pages)]
    assert snapshot.pages == -(-len(fleet_ids(fleet)) // 10)


def test_it_passes_an_error_of_a_later_page_on(simulator: SimulatorServer) -> None:
    simulator.inject("503", page=2)

    with pytest.raises(APIError) as caught:
        client_for(simulator.url).fetch_all(page_size=10, keep=lambda record: record)

    assert caught.value.status == 503


@pytest.mark.parametrize("page_size", [0, 1001, True, "10"])
def test_it_rejects_a_bad_page_size(page_size: object) -> None:
    with pytest.raises(InvalidQueryError, match="page_size"):
        client_for("http://127.0.0.1:9").fetch_all(page_size=page_size)  # type: ignore[arg-type]


# --- what goes over the wire ----------------------------------------------------------------


def test_it_builds_the_url_and_headers_itself(stub: StubAPI) -> None:
    stub.reply(200, {"total_count": 0, "count": 0, "services": []})
    query = ServiceQuery(service_name="demo svc", status="running", infer_type="real-time")

    client_for(stub.url + "/").list_services(query.with_page(0, 10))

    path, headers = stub.requests[0]
    # The query string of the signing vector in API.md §3b, byte for byte.
    assert path == (
        f"/v1/{PROJECT_ID}/services"
        "?infer_type=real-time&limit=10&offset=0&service_name=demo%20svc&status=running"
    )
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"] == "modelarts-dashboard/0.1"
    assert headers["X-Auth-Token"] == TOKEN


def test_it_sends_no_query_string_for_an_empty_query(stub: StubAPI) -> None:
    stub.reply(200, {"total_count": 0, "services": []})

    client_for(stub.url, user_agent="probe/2").list_services()

    path, headers = stub.requests[0]
    assert path == f"/v1/{PROJECT_ID}/services"
    assert headers["User-Agent"] == "probe/2"


def test_it_percent_encodes_everything_but_unreserved_characters(stub: StubAPI) -> None:
    stub.reply(200, {"total_count": 0, "services": []})

    client_for(stub.url).list_services(ServiceQuery(service_name="a/b&c=d+é~_.-"))

    assert stub.requests[0][0].endswith("?service_name=a%2Fb%26c%3Dd%2B%C3%A9~_.-")


def test_it_does_not_follow_redirects(stub: StubAPI) -> None:
    # Following would hand the token to whatever host the Location names.
    stub.reply(302, "", Location="http://127.0.0.1:9/elsewhere")

    with pytest.raises(APIError) as caught:
        client_for(stub.url).list_services()

    assert caught.value.status == 302
    assert len(stub.requests) == 1


def test_it_uses_the_session_it_is_given(stub: StubAPI) -> None:
    stub.reply(200, {"total_count": 0, "services": []})
    session = requests.Session()
    session.headers["X-Trace"] = "t-1"

    with client_for(stub.url, session=session) as client:
        client.list_services()

    assert stub.requests[0][1]["X-Trace"] == "t-1"
    assert session.adapters  # the caller's session is left open for the caller


# --- answers the client cannot use --------------------------------------------------------


def test_it_rejects_an_html_page_sent_with_200(stub: StubAPI) -> None:
    stub.reply(
        200, "<html><body><h1>Login</h1>Please sign in</body></html>", Content_Type="text/html"
    )

    with pytest.raises(ResponseError) as caught:
        client_for(stub.url).list_services()

    message = str(caught.value)
    assert "not JSON" in message and "text/html" in message and "Login Please sign in" in message


def test_it_rejects_an_empty_200(stub: StubAPI) -> None:
    stub.reply(200, "")

    with pytest.raises(ResponseError, match="empty body"):
        client_for(stub.url).list_services()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "must be a JSON object"),
        ({"services": []}, "total_count"),
        ({"total_count": 1, "services": "none"}, "'services' must be a list"),
    ],
)
def test_it_rejects_an_unusable_json_200(stub: StubAPI, body: object, problem: str) -> None:
    stub.reply(200, json.dumps(body))

    with pytest.raises(ResponseError, match=problem) as caught:
        client_for(stub.url).list_services()

    assert "127.0.0.1" in str(caught.value)


def test_it_reads_the_good_items_of_a_page_and_flags_the_listing_incomplete(
    stub: StubAPI,
) -> None:
    good = {"service_id": "a1", "service_name": "ok"}
    stub.reply(200, json.dumps({"total_count": 2, "services": [good, {"service_name": "x"}]}))

    snapshot = client_for(stub.url).fetch_all()

    assert [s.service_id for s in snapshot.services] == ["a1"]
    assert not snapshot.complete
    assert snapshot.rejected == (
        "page 1: services[1]: a service item has no usable service_id (None)",
    )


def test_it_quotes_an_html_error_page(stub: StubAPI) -> None:
    stub.reply(502, "<html><title>502 Bad Gateway</title><h1>nginx</h1></html>", X_Request_Id="r1")

    with pytest.raises(APIError) as caught:
        client_for(stub.url).list_services()

    host = urlsplit(stub.url).netloc
    assert str(caught.value) == f"HTTP 502: 502 Bad Gateway nginx (from {host}, request r1)"


def test_it_hides_credentials_an_error_body_echoes(stub: StubAPI) -> None:
    stub.reply(401, {"error_code": "APIGW.0301", "error_msg": f"Incorrect token {TOKEN}"})

    with pytest.raises(APIError) as caught:
        client_for(stub.url).list_services()

    assert TOKEN not in str(caught.value)
    host = urlsplit(stub.url).netloc
    assert str(caught.value) == f"APIGW.0301: Incorrect token [hidden] (HTTP 401, from {host})"


# --- could not reach ------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    return free_port()


@pytest.fixture
def silent_port() -> Iterator[int]:
    # Listening but never accepting: the kernel completes the handshake, nobody ever answers.
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def test_it_reports_a_refused_connection(closed_port: int) -> None:
    with pytest.raises(TransportError) as caught:
        client_for(f"http://127.0.0.1:{closed_port}").list_services()

    assert str(caught.value) == f"could not reach 127.0.0.1:{closed_port}: connection refused"
    assert isinstance(caught.value.__cause__, requests.ConnectionError)


def test_it_reports_a_read_timeout(silent_port: int) -> None:
    client = client_for(f"http://127.0.0.1:{silent_port}", timeout=0.2)

    with pytest.raises(TransportError, match="timed out after 0.2 s") as caught:
        client.list_services()

    assert TOKEN not in str(caught.value)


def test_it_reports_a_tls_failure(simulator: SimulatorServer) -> None:
    # The simulator speaks plain HTTP, so the TLS handshake cannot succeed.
    client = client_for(simulator.url.replace("http://", "https://"))

    with pytest.raises(TransportError, match=r"could not reach 127\.0\.0\.1:\d+: TLS failed"):
        client.list_services()


# --- construction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("", "endpoint is empty"),
        (None, "endpoint is empty"),
        ("modelarts.cn-north-4.myhuaweicloud.com", "http"),
        ("ftp://modelarts.example.com", "http"),
        ("https://", "host"),
        ("https://modelarts.example.com?x=1", "query"),
        ("https://modelarts.example.com/#top", "fragment"),
        ("https://modelarts.example.com:https", "not a valid URL"),
    ],
)
def test_it_rejects_a_bad_endpoint(endpoint: object, problem: str) -> None:
    with pytest.raises(InvalidQueryError, match=problem):
        ModelArtsClient(endpoint, PROJECT_ID, TokenAuth(TOKEN))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "endpoint", ["https://me:s3cret@modelarts.example.com", "me:s3cret@modelarts.example.com"]
)
def test_it_rejects_credentials_in_the_endpoint_without_repeating_them(endpoint: str) -> None:
    with pytest.raises(InvalidQueryError, match="user:password") as caught:
        ModelArtsClient(endpoint, PROJECT_ID, TokenAuth(TOKEN))

    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize("project_id", ["", None, "a/b", "a b", "../x", "a?b", "x" * 129])
def test_it_rejects_a_bad_project_id(project_id: object) -> None:
    with pytest.raises(InvalidQueryError, match="project_id"):
        ModelArtsClient("https://m.example.com", project_id, TokenAuth(TOKEN))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"offset_mode": "bytes"}, "offset_mode"),
        ({"max_pages": 0}, "max_pages"),
        ({"max_pages": True}, "max_pages"),
        ({"timeout": 0}, "timeout"),
        ({"connect_timeout": -1}, "connect_timeout"),
        ({"timeout": True}, "timeout"),
        ({"user_agent": "a\r\nX-Evil: 1"}, "user_agent"),
    ],
)
def test_it_rejects_bad_options(options: dict, problem: str) -> None:
    with pytest.raises(InvalidQueryError, match=problem):
        client_for("https://m.example.com", **options)


def test_it_rejects_an_auth_without_headers_for_without_repeating_it() -> None:
    with pytest.raises(InvalidQueryError, match="headers_for") as caught:
        ModelArtsClient("https://m.example.com", PROJECT_ID, TOKEN)  # type: ignore[arg-type]

    assert TOKEN not in str(caught.value)


def test_it_normalises_the_endpoint_and_keeps_a_path_prefix() -> None:
    client = client_for("https://gw.example.com/modelarts/")

    assert client.endpoint == "https://gw.example.com/modelarts"


@pytest.mark.parametrize("token", ["", "  ", "abc\ndef", None])
def test_it_rejects_a_bad_token_without_repeating_it(token: object) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        TokenAuth(token)  # type: ignore[arg-type]

    assert "def" not in str(caught.value)


def test_it_keeps_the_token_out_of_reprs() -> None:
    auth = TokenAuth(TOKEN)

    assert TOKEN not in repr(auth)
    assert TOKEN not in repr(client_for("https://m.example.com"))
    assert auth.headers_for("GET", "https://m.example.com", {"A": "1"}) == {
        "A": "1",
        "X-Auth-Token": TOKEN,
    }
