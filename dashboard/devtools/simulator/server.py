"""A Fleet behind a real HTTP server that answers like ModelArts' v1 service API.

Implements ListServices (`GET /v1/{project_id}/services`), ShowService
(`GET /v1/{project_id}/services/{service_id}`) and the per-service events, monitor and update
logs (`.../{service_id}/events|monitor|logs`, bodies made by `detail`) with the documented query
parameters, error bodies and status codes, so the client is tested against real sockets, headers
and JSON. Callers authenticate with nothing, a fixed token, an AK/SK signature or an IAM token
issued by `POST /v3/auth/tokens` on the same port; requests can be made to fail in the ways
`faults` describes, on demand (`inject`) or at random.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import re
import socket
import threading
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

from dashboard.devtools.simulator.detail import MAX_EVENTS_LIMIT, EventsRequest, ServiceDetails
from dashboard.devtools.simulator.faults import (
    Fault,
    FaultPlan,
    as_fault,
    faulty_detail_reply,
    faulty_reply,
)
from dashboard.devtools.simulator.fleet import (
    INFER_TYPES,
    ORDERS,
    SORT_KEYS,
    STATUSES,
    WORKSPACE_ID,
    Fleet,
    ListRequest,
)
from dashboard.devtools.simulator.identity import AkSkVerifier, TokenIssuer
from dashboard.devtools.simulator.wire import ApiError, KeystoneError, Reply

logger = logging.getLogger(__name__)

AUTH_MODES = ("none", "token", "aksk", "iam")
OFFSET_MODES = ("page", "record")
LIST_PATH = re.compile(r"/v1/(?P<project>[^/]+)/services")
SHOW_PATH = re.compile(r"/v1/(?P<project>[^/]+)/services/(?P<service>[^/]+)")
DETAIL_PATH = re.compile(
    r"/v1/(?P<project>[^/]+)/services/(?P<service>[^/]+)/(?P<api>events|monitor|logs)"
)
IAM_TOKENS_PATH = "/v3/auth/tokens"
LIST_PARAMS = frozenset(
    {
        "service_id",
        "service_name",
        "model_id",
        "workspace_id",
        "infer_type",
        "status",
        "offset",
        "limit",
        "sort_by",
        "order",
        # Documented (tags) or once documented (cluster_id); accepted, and ignored here.
        "tags",
        "cluster_id",
    }
)
EVENT_PARAMS = frozenset(
    {
        "event_type",
        "event_info",  # an English text filter; accepted, and ignored here
        "start_time",
        "end_time",
        "offset",
        "limit",
        "sort_by",
        "order",
    }
)
EVENT_TYPES = ("normal", "abnormal")
# No maximum is documented: `limit` is only "max records per page", default 1000. Capping at the
# default keeps clients honest: anything that wants more than 1000 services must page.
MAX_LIMIT = 1000
DEFAULT_LIMIT = 1000
NOT_A_SERVICE_API = "APIG.0101"  # what Huawei's API gateway answers for an unknown API
MAX_BODY = 64 * 1024  # an IAM login is well under 1 KiB; nothing else here takes a body
SECRET_HEADERS = frozenset({"x-auth-token", "authorization", "x-security-token"})
KEPT_REQUESTS = 10_000  # of `requests`: enough for any test, bounded for a long demo


class RequestRecord(NamedTuple):
    """One request as it arrived, credentials blanked out, for tests to count and inspect."""

    method: str
    path: str  # with the query string, as sent
    headers: dict[str, str]


def _invalid(message: str) -> ApiError:
    return ApiError(400, "ModelArts.0101", message)


def _shown(value: str) -> str:
    """A caller's value, quoted and cut short, for an error message."""
    return repr(value if len(value) <= 64 else value[:61] + "...")


def _single_values(raw: str, known: frozenset[str] = LIST_PARAMS) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, given in parse_qs(raw, keep_blank_values=True).items():
        # Unknown parameters are ignored, as Huawei's APIs generally do.
        if name not in known:
            continue
        if len(given) > 1:
            raise _invalid(f"Parameter {name} was given {len(given)} times; give it once.")
        # How the real API treats an empty value is undocumented; here it means "not given".
        if given[0]:
            values[name] = given[0]
    return values


def _choice(values: dict[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    value = values.get(name)
    if value is not None and value not in choices:
        allowed = ", ".join(choices)
        raise _invalid(f"Invalid {name} {_shown(value)}: must be one of {allowed}.")
    return value


def _integer(values: dict[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    value = values.get(name)
    if value is None:
        return default
    if not re.fullmatch(r"[0-9]{1,18}", value):
        raise _invalid(f"Invalid {name} {_shown(value)}: must be a whole number >= {minimum}.")
    number = int(value)
    if not minimum <= number <= maximum:
        raise _invalid(f"Invalid {name} {number}: must be between {minimum} and {maximum}.")
    return number


def parse_list_query(raw: str, offset_mode: str) -> ListRequest:
    """ListServices' query string → a validated query, or ApiError (400)."""
    values = _single_values(raw)
    offset = _integer(values, "offset", 0, 0, 10**18)
    limit = _integer(values, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    query = ListRequest(
        service_id=values.get("service_id"),
        service_name=values.get("service_name"),
        model_id=values.get("model_id"),
        infer_type=_choice(values, "infer_type", INFER_TYPES),
        status=_choice(values, "status", STATUSES),
        sort_by=_choice(values, "sort_by", SORT_KEYS) or "publish_at",
        order=_choice(values, "order", ORDERS) or "desc",
        # The docs call offset the "start page"; whether that is true is unverified (API.md 1.7).
        start=offset * limit if offset_mode == "page" else offset,
        limit=limit,
    )
    workspace = values.get("workspace_id", WORKSPACE_ID)
    if workspace != WORKSPACE_ID:
        raise ApiError(400, "ModelArts.0102", f"Workspace {_shown(workspace)} does not exist.")
    return query


def parse_events_query(raw: str, offset_mode: str) -> EventsRequest:
    """The events API's query string → a validated query, or ApiError (400)."""
    values = _single_values(raw, EVENT_PARAMS)
    offset = _integer(values, "offset", 0, 0, 10**18)
    limit = _integer(values, "limit", MAX_EVENTS_LIMIT, 1, MAX_EVENTS_LIMIT)
    _choice(values, "sort_by", ("occur_time",))
    start_time, end_time = (
        _integer(values, name, 0, 0, 10**15) if name in values else None
        for name in ("start_time", "end_time")
    )
    return EventsRequest(
        event_type=_choice(values, "event_type", EVENT_TYPES),
        start_time=start_time,
        end_time=end_time,
        order=_choice(values, "order", ORDERS) or "desc",
        # The same "start page" wording as the list's offset, read the same way.
        start=offset * limit if offset_mode == "page" else offset,
        limit=limit,
    )


class SimulatorServer:
    """Serves `fleet` over HTTP from a daemon thread; `start()` and `stop()` it."""

    def __init__(
        self,
        fleet: Fleet,
        host: str = "127.0.0.1",
        port: int = 0,
        project_id: str | None = None,
        auth: str = "none",
        token: str | None = None,
        offset_mode: str = "page",
        *,
        ak: str | None = None,
        sk: str | None = None,
        security_token: str | None = None,
        iam_users: Mapping[tuple[str, str], str] | None = None,
        project_name: str = "cn-north-4",
        token_ttl: float = 86400.0,
        random_faults: Sequence[tuple[Fault | str, float]] = (),
    ) -> None:
        if auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, not {auth!r}")
        if auth == "token" and not token:
            raise ValueError("auth='token' needs a token")
        if auth == "aksk" and not (ak and sk):
            raise ValueError("auth='aksk' needs an ak and an sk")
        if auth == "iam" and not iam_users:
            raise ValueError("auth='iam' needs iam_users: {(domain, user name): password}")
        if not token_ttl > 0:
            raise ValueError(f"token_ttl must be positive, not {token_ttl}")
        if offset_mode not in OFFSET_MODES:
            raise ValueError(f"offset_mode must be page or record, not {offset_mode!r}")
        self.fleet, self.host, self._port = fleet, host, port
        self.details = ServiceDetails(fleet)
        self.project_id = project_id or fleet.project
        self.auth, self._token, self.offset_mode = auth, token or "", offset_mode
        self._aksk = AkSkVerifier(ak, sk, security_token, fleet.clock) if auth == "aksk" else None
        self._iam = (
            TokenIssuer(iam_users, self.project_id, project_name, token_ttl, fleet.clock)
            if auth == "iam"
            else None
        )
        # The fleet's seed also seeds the random faults, so one --seed replays a whole run.
        self._faults = FaultPlan(
            [(as_fault(fault), probability) for fault, probability in random_faults],
            seed=fleet.seed,
        )
        self._log: deque[RequestRecord] = deque(maxlen=KEPT_REQUESTS)
        self._log_lock = threading.Lock()
        self.request_count = 0
        # Set by stop(): wakes requests that are sleeping or holding their connection.
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        # Deliberately without the token.
        return f"<SimulatorServer {self.url if self._httpd else 'stopped'} auth={self.auth}>"

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd else self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SimulatorServer:
        if self._httpd is not None:
            raise RuntimeError("the simulator is already running")
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self._port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            # stop() waits up to one poll interval; tests start and stop a server each.
            kwargs={"poll_interval": 0.02},
            name=f"modelarts-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None or self._thread is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        # Idle keep-alive connections would otherwise hold their threads until they time out.
        self._httpd.close_connections()
        self._httpd.server_close()
        self._thread.join()
        self._httpd, self._thread = None, None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Tests' handles on the running server.

    def inject(
        self, fault: Fault | str, *, times: int = 1, page: int | None = None, api: str = "list"
    ) -> Fault:
        """Make the next `times` requests to `api` (for page `page` only, if given) hit `fault`.

        api is "list" (the default), "show", "events", "monitor", "logs", "detail" (any of the
        four per-service APIs) or "any". A page is the offset in page mode and offset // limit
        in record mode; only list and events requests have one. Only requests that pass
        authentication and validation, and name a service that exists, use a fault up; queued
        faults come before random ones.
        """
        return self._faults.inject(fault, times, page, api)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        """The requests received (the latest 10,000), oldest first."""
        with self._log_lock:
            return list(self._log)

    @property
    def logins(self) -> int:
        """Successful IAM logins so far."""
        return self._iam.logins if self._iam else 0

    def revoke_tokens(self) -> None:
        """Invalidate every IAM token issued so far, as a password change would."""
        if self._iam is not None:
            self._iam.revoke_all()

    def _sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`, or until the server stops."""
        self._stopping.wait(seconds)

    def answer(self, method: str, target: str, headers: Message, body: bytes = b"") -> Reply:
        """The reply to one request; the whole API in one place."""
        self._record(method, target, headers)
        request_id = uuid.uuid4().hex
        try:
            reply = self._route(method, target, headers, body, request_id)
        except (ApiError, KeystoneError) as error:
            reply = error.reply(request_id)
        reply.headers.setdefault("X-Request-Id", request_id)
        if reply.status == 405:
            iam = urlsplit(target).path == IAM_TOKENS_PATH
            reply.headers["Allow"] = "POST" if iam else "GET"
        return reply

    def _route(
        self, method: str, target: str, headers: Message, body: bytes, request_id: str
    ) -> Reply:
        url = urlsplit(target)
        if url.path == IAM_TOKENS_PATH and self._iam is not None:
            if method != "POST":
                raise ApiError(405, NOT_A_SERVICE_API, f"{method} is not allowed here; use POST.")
            return self._iam.login(body)
        route = (
            LIST_PATH.fullmatch(url.path)
            or SHOW_PATH.fullmatch(url.path)
            or DETAIL_PATH.fullmatch(url.path)
        )
        if route is None:
            raise ApiError(404, NOT_A_SERVICE_API, f"No API at {_shown(url.path)}.")
        if method != "GET":
            # The gateway has no such API either; 405 tells the client what went wrong.
            raise ApiError(405, NOT_A_SERVICE_API, f"{method} is not allowed here; use GET.")
        self._authorize(method, target, headers, body, route["project"])
        service_id = route.groupdict().get("service")
        if service_id is not None:
            # Clients escape the ID as one path segment; %2F inside it is not a separator.
            api = route.groupdict().get("api") or "show"
            return self._detail(api, unquote(service_id), url.query, request_id)
        query = parse_list_query(url.query, self.offset_mode)
        fault = self._faults.take(page=query.start // query.limit)
        if fault is not None:
            return faulty_reply(fault, query, self.fleet.select, request_id)
        return Reply(200, self.fleet.select_body(query))

    def _record(self, method: str, target: str, headers: Message) -> None:
        shown = {
            name: "<hidden>" if name.lower() in SECRET_HEADERS else value
            for name, value in headers.items()
        }
        with self._log_lock:
            self._log.append(RequestRecord(method, target, shown))
            self.request_count += 1

    def _authorize(
        self, method: str, target: str, headers: Message, body: bytes, project_id: str
    ) -> None:
        if self.auth == "token":
            given = headers.get("X-Auth-Token")
            if not given:
                raise ApiError(401, "ModelArts.0201", "The X-Auth-Token header is missing.")
            if not hmac.compare_digest(given.encode(), self._token.encode()):
                raise ApiError(401, "ModelArts.0203", "The token in X-Auth-Token is invalid.")
        elif self._aksk is not None:
            self._aksk.verify(method, target, headers, body)
        elif self._iam is not None:
            self._iam.check(headers.get("X-Auth-Token"))
        if project_id != self.project_id:
            raise ApiError(
                403,
                "ModelArts.0210",
                f"Project {_shown(project_id)} in the URL is not the project of this token.",
            )

    def _detail(self, api: str, service_id: str, raw_query: str, request_id: str) -> Reply:
        """ShowService or a per-service API; 404 ModelArts.3502 for a service not listed now."""
        page = None
        if api == "events":
            query = parse_events_query(raw_query, self.offset_mode)
            page = query.start // query.limit
            body = self.details.events(service_id, query)
        elif api == "monitor":
            body = self.details.monitor(service_id)
        elif api == "logs":
            body = self.details.update_logs(service_id)
        else:
            body = self.details.show(service_id)
        if body is None:
            raise ApiError(404, "ModelArts.3502", f"Service {_shown(service_id)} does not exist.")
        fault = self._faults.take(page=page, api=api)
        if fault is not None:
            return faulty_detail_reply(fault, api, body, request_id)
        return Reply.json(200, body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], simulator: SimulatorServer) -> None:
        self.simulator = simulator
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer are normal here; keep them off stderr.
        logger.debug("connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    # Keep-alive matters when a client pages through 100 pages of a big fleet.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, a kept-alive connection waits
    # for the client's delayed ACK (about 40 ms) before sending the body.
    disable_nagle_algorithm = True
    server_version = "ModelArtsSimulator/1.0"
    timeout = 60  # seconds an idle keep-alive connection may hold its thread

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_PATCH(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def do_OPTIONS(self) -> None:
        self._answer()

    def _answer(self) -> None:
        body = self._read_body()
        simulator = self.server.simulator
        try:
            reply = simulator.answer(self.command, self.path, self.headers, body)
        except Exception:
            # The request boundary: a simulator bug becomes the documented 500, not a hang-up.
            logger.exception("simulator failed on %s %s", self.command, self.path)
            request_id = uuid.uuid4().hex
            reply = ApiError(500, "ModelArts.3505", "Internal error.").reply(request_id)
            reply.headers["X-Request-Id"] = request_id
        self._send(reply)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or (length and not length.isdigit()):
            # Left unread, the body would be taken for the next request on this connection.
            self.close_connection = True
            return b""
        if not length or int(length) == 0:
            return b""
        if int(length) > MAX_BODY:
            self.close_connection = True
            return b""
        return self.rfile.read(int(length))

    def _send(self, reply: Reply) -> None:
        simulator = self.server.simulator
        if reply.hold is not None:
            # A server that never answers: the client's read timeout is what should fire.
            simulator._sleep(reply.hold)
            self.close_connection = True
            return
        if reply.delay:
            simulator._sleep(reply.delay)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        if reply.truncate_to is not None:
            # Promised Content-Length bytes, sent fewer, hung up: a connection cut mid-body.
            self.wfile.write(reply.body[: reply.truncate_to])
            self.close_connection = True
            return
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        # Request lines carry no credentials (the token travels in a header), so DEBUG is safe.
        logger.debug("%s %s", self.address_string(), format % args)
