"""A Fleet behind a real HTTP server that answers like ModelArts' v1 service API.

Implements ListServices (`GET /v1/{project_id}/services`) and ShowService
(`GET /v1/{project_id}/services/{service_id}`) with the documented query parameters, error
bodies and status codes, so the client is tested against real sockets, headers and JSON.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
import socket
import threading
import uuid
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dashboard.simulator.fleet import (
    INFER_TYPES,
    ORDERS,
    SORT_KEYS,
    STATUSES,
    WORKSPACE_ID,
    Fleet,
    ListRequest,
)

logger = logging.getLogger(__name__)

AUTH_MODES = ("none", "token")
OFFSET_MODES = ("page", "record")
LIST_PATH = re.compile(r"/v1/(?P<project>[^/]+)/services")
SHOW_PATH = re.compile(r"/v1/(?P<project>[^/]+)/services/(?P<service>[^/]+)")
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
# No maximum is documented: `limit` is only "max records per page", default 1000. Capping at the
# default keeps clients honest: anything that wants more than 1000 services must page.
MAX_LIMIT = 1000
DEFAULT_LIMIT = 1000
NOT_A_SERVICE_API = "APIG.0101"  # what Huawei's API gateway answers for an unknown API


class ApiError(Exception):
    """An error answer: HTTP status plus the ModelArts error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, str]:
        return {"error_code": self.code, "error_msg": self.message}


def _invalid(message: str) -> ApiError:
    return ApiError(400, "ModelArts.0101", message)


def _shown(value: str) -> str:
    """A caller's value, quoted and cut short, for an error message."""
    return repr(value if len(value) <= 64 else value[:61] + "...")


def _single_values(raw: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, given in parse_qs(raw, keep_blank_values=True).items():
        # Unknown parameters are ignored, as Huawei's APIs generally do.
        if name not in LIST_PARAMS:
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
    ) -> None:
        if auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, not {auth!r}")
        if auth == "token" and not token:
            raise ValueError("auth='token' needs a token")
        if offset_mode not in OFFSET_MODES:
            raise ValueError(f"offset_mode must be page or record, not {offset_mode!r}")
        self.fleet, self.host, self._port = fleet, host, port
        self.project_id = project_id or fleet.project
        self.auth, self._token, self.offset_mode = auth, token or "", offset_mode
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

    def answer(self, method: str, target: str, headers: Message) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) for one request; the whole API in one place."""
        url = urlsplit(target)
        route = LIST_PATH.fullmatch(url.path) or SHOW_PATH.fullmatch(url.path)
        if route is None:
            raise ApiError(404, NOT_A_SERVICE_API, f"No API at {_shown(url.path)}.")
        if method != "GET":
            # The gateway has no such API either; 405 tells the client what went wrong.
            raise ApiError(405, NOT_A_SERVICE_API, f"{method} is not allowed here; use GET.")
        self._authorize(headers, route["project"])
        service_id = route.groupdict().get("service")
        if service_id is not None:
            return 200, self._show(service_id)
        query = parse_list_query(url.query, self.offset_mode)
        total, services = self.fleet.select(query)
        return 200, {"total_count": total, "count": len(services), "services": services}

    def _authorize(self, headers: Message, project_id: str) -> None:
        if self.auth == "token":
            given = headers.get("X-Auth-Token")
            if not given:
                raise ApiError(401, "ModelArts.0201", "The X-Auth-Token header is missing.")
            if not hmac.compare_digest(given.encode(), self._token.encode()):
                raise ApiError(401, "ModelArts.0203", "The token in X-Auth-Token is invalid.")
        if project_id != self.project_id:
            raise ApiError(
                403,
                "ModelArts.0210",
                f"Project {_shown(project_id)} in the URL is not the project of this token.",
            )

    def _show(self, service_id: str) -> dict[str, Any]:
        body = self.fleet.show(service_id)
        if body is None:
            raise ApiError(404, "ModelArts.3502", f"Service {_shown(service_id)} does not exist.")
        return body


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
        if self.command != "GET":
            # An unread request body would corrupt the next request on this connection.
            self.close_connection = True
        try:
            status, body = self.server.simulator.answer(self.command, self.path, self.headers)
        except ApiError as error:
            status, body = error.status, error.body()
        except Exception:
            # The request boundary: a simulator bug becomes the documented 500, not a hang-up.
            logger.exception("simulator failed on %s %s", self.command, self.path)
            status, body = 500, ApiError(500, "ModelArts.3505", "Internal error.").body()
        self._send(status, body)

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Request-Id", uuid.uuid4().hex)
        if status == 405:
            self.send_header("Allow", "GET")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        # Request lines carry no credentials (the token travels in a header), so DEBUG is safe.
        logger.debug("%s %s", self.address_string(), format % args)
