"""Fake alert receivers over real sockets on 127.0.0.1: an HTTP one that records each request
and answers as the test says, and a small SMTP one that records each message."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import socketserver
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from typing import Self
from urllib.parse import parse_qs, urlsplit

from local_http import LocalHTTPServer, QuietHandler, free_port

from dashboard.alerts.channels import AlertLine, Notification


@dataclass(frozen=True)
class Reply:
    """One answer: status, body (bytes, text or JSON), headers; `delay` seconds before it;
    `stall` seconds after the headers, before a body that never comes; `echo` answers with
    the whole request (line, headers, body) as a careless receiver might."""

    status: int = 200
    body: bytes | str | dict | list = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    stall: float = 0.0
    echo: bool = False

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass(frozen=True)
class Seen:
    """One request as it arrived."""

    method: str
    target: str  # path?query, exactly as sent
    headers: Message
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    @property
    def params(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.query, keep_blank_values=True).items()}

    def json(self):
        return json.loads(self.body)


class FakeReceiver(LocalHTTPServer):
    """Answers each request with the next queued Reply, then with `default`."""

    def __init__(self, *replies: Reply, default: Reply | None = None):
        self.seen: list[Seen] = []
        self.replies = list(replies)
        self.default = default or Reply()
        self.stopping = threading.Event()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.seen.append(Seen(self.command, self.path, self.headers, body))
                reply = receiver.replies.pop(0) if receiver.replies else receiver.default
                if reply.delay and receiver.stopping.wait(reply.delay):
                    return  # the test is over: nobody is waiting for this answer
                payload = self.echoed(body) if reply.echo else reply.payload()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if reply.stall:
                        self.wfile.flush()
                        receiver.stopping.wait(reply.stall)
                        return
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST

            def echoed(self, body: bytes) -> bytes:
                head = f"{self.command} {self.path}\n{self.headers}".encode()
                return head + b"\n" + body

        super().__init__(Handler)

    @property
    def last(self) -> Seen:
        return self.seen[-1]

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        super().__exit__(*exc_info)


def closed_url(path: str = "/") -> str:
    """An http URL on a loopback port nobody listens on."""
    return f"http://127.0.0.1:{free_port()}{path}"


class SMTPReceiver:
    """A minimal SMTP server (RFC 5321 commands Django's backend uses) that records messages.

    `rcpt_reply`, `data_reply` and `auth_reply` set what it answers; AUTH PLAIN is offered
    only when `auth_reply` is set."""

    def __init__(
        self, *, rcpt_reply: str = "250 OK", data_reply: str = "250 OK", auth_reply: str = ""
    ):
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.rcpt_reply, self.data_reply, self.auth_reply = rcpt_reply, data_reply, auth_reply
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            def say(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.say("220 fake.test ESMTP")
                sender, recipients = "", []
                while line := self.rfile.readline():
                    command = line.decode("utf-8", "replace").strip()
                    verb = command[:4].upper()
                    if verb == "EHLO":
                        self.say("250-fake.test" if receiver.auth_reply else "250 fake.test")
                        if receiver.auth_reply:
                            self.say("250 AUTH PLAIN")
                    elif verb == "HELO":
                        self.say("250 fake.test")
                    elif verb == "AUTH":
                        self.say(receiver.auth_reply)
                    elif verb == "MAIL":
                        sender, recipients = command[10:].strip("<> "), []
                        self.say("250 OK")
                    elif verb == "RCPT":
                        recipients.append(command[8:].strip("<> "))
                        self.say(receiver.rcpt_reply)
                    elif verb == "DATA":
                        self.say("354 End data with <CR><LF>.<CR><LF>")
                        receiver.record(sender, recipients, self.read_data())
                        self.say(receiver.data_reply)
                    elif verb == "QUIT":
                        self.say("221 Bye")
                        return
                    else:  # RSET, NOOP
                        self.say("250 OK")

            def read_data(self) -> bytes:
                lines = []
                while (line := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(line[1:] if line.startswith(b"..") else line)
                return b"".join(lines)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def record(self, sender: str, recipients: list[str], data: bytes) -> None:
        if self.data_reply.startswith("2"):
            self.envelopes.append((sender, list(recipients)))
            self.messages.append(email.message_from_bytes(data, policy=email.policy.default))

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


# What the receivers are sent.

STARTED = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
ENDED = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
DASHBOARD = "http://dashboard.test"


def alert_line(
    name: str = "svc-a",
    *,
    state: str = "firing",
    service_id: str = "s-0001",
    status: str = "failed",
    previous: str = "running",
    owner: str = "alice",
    rate: str | None = "12.50%",
) -> AlertLine:
    labels = {
        "alertname": "failing-services",
        "service_id": service_id,
        "service_name": name,
        "status": status,
        "previous_status": previous,
        "source": "sim",
        "owner": owner,
    }
    annotations = {"summary": f"{name} is {status}"}
    if rate is not None:
        annotations["failure_rate"] = rate
    return AlertLine(
        state=state,
        labels=labels,
        annotations=annotations,
        starts_at=STARTED,
        ends_at=ENDED if state == "resolved" else None,
        url=f"{DASHBOARD}/services/{service_id}/?source=sim",
        fingerprint=hashlib.blake2b(service_id.encode(), digest_size=8).hexdigest(),
    )


def notification(*alerts: AlertLine, rule: str = "failing-services") -> Notification:
    return Notification(
        rule=rule,
        alerts=alerts or (alert_line(),),
        external_url=DASHBOARD,
        message_id="msg_2Yd8example0001",
    )


def many(count: int, state: str = "firing") -> Notification:
    return notification(
        *(alert_line(f"svc-{n:02d}", service_id=f"s-{n:04d}", state=state) for n in range(count))
    )
