"""A webhook receiver for the demo: it checks each alert message's Standard Webhooks
signature and prints what it got, so a newcomer sees alerts arrive without any chat tool."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Lines of one message printed before "and N more".
SHOWN = 5


def signature_ok(secret: str, headers, body: bytes) -> bool:
    """The Standard Webhooks check: HMAC-SHA256 of "id.timestamp.body" with the secret's key."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers.get('webhook-id')}.{headers.get('webhook-timestamp')}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [part.partition(",")[2] for part in headers.get("webhook-signature", "").split()]
    return any(hmac.compare_digest(expected, sig) for sig in offered)


def describe(message: dict) -> list[str]:
    """A message as lines a person reads in a terminal."""
    alerts = message.get("alerts", [])
    rule = message.get("groupLabels", {}).get("alertname") or message.get("receiver", "")
    lines = [f"{message.get('status', '?').upper()} {rule}: {len(alerts)} alert(s)"]
    for alert in alerts[:SHOWN]:
        labels = alert.get("labels", {})
        what = labels.get("service_name") or labels.get("source", "")
        lines.append(f"  {alert.get('status')}: {what} ({labels.get('status', 'stale')})")
    if len(alerts) > SHOWN:
        lines.append(f"  … and {len(alerts) - SHOWN} more")
    return lines


class AlertReceiver:
    """Serves POST / on a loopback port in a thread; `report` gets each line it prints."""

    def __init__(self, secret: str, report: Callable[[str], None], host: str = "127.0.0.1"):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not signature_ok(secret, self.headers, body):
                    report("receiver: refused a message with a bad signature")
                    self.send_response(401)
                else:
                    for line in describe(json.loads(body)):
                        report(f"receiver: {line}")
                    receiver.received += 1
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.received = 0
        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> AlertReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
