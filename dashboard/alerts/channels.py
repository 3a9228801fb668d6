"""Delivering one grouped alert message to one receiver, in that receiver's published format
(the shared ALERTS.md): an Alertmanager-style webhook, the Alertmanager API, Slack,
WeCom, DingTalk, Feishu, Huawei Cloud SMN or email.

`deliver` sends once and says what the receiver answered; it never raises for receiver trouble
and never retries (the outbox does, with the same message id). Secrets (signing secrets, SK,
the keys WeCom and DingTalk carry in their URLs, the ones Slack and Feishu carry in their
paths) never appear in what it returns: receivers may echo a request back.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import hmac
import json
import math
import re
import smtplib
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import NoReturn
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit

import requests
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from dashboard.alerts import messages
from dashboard.modelarts.signer import DATE_HEADER, format_sdk_date, sign_headers

KINDS: tuple[str, ...] = (
    "webhook",
    "alertmanager",
    "slack",
    "wecom",
    "dingtalk",
    "feishu",
    "smn",
    "email",
)
# (messages, per seconds) each receiver accepts from one robot or hook.
RATE_LIMITS: dict[str, tuple[int, float]] = {
    "dingtalk": (20, 60),
    "wecom": (20, 60),
    "feishu": (5, 1),
}
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert still firing
ANSWER_LIMIT = 500  # characters of a receiver's answer kept
ANSWER_READ = 64 * 1024  # bytes read of an answer: a receiver could stream forever
MAX_RETRY_AFTER = 3600.0  # seconds: a Retry-After of a week must not park a message that long
HIDDEN = "[hidden]"
# Bytes of text each receiver takes: WeCom documents 4096; DingTalk and Feishu reject requests
# of about 20 KB, SMN subjects over 512 bytes.
TEXT_BYTES = {"wecom": 4096, "dingtalk": 18000, "feishu": 18000, "smn": 200_000}
SMN_SUBJECT_BYTES = 512
# Vendor codes that mean "too many messages": wait a window before the next try.
THROTTLED = {("dingtalk", 130101): 60.0, ("wecom", 45009): 60.0, ("feishu", 11232): 1.0}
# Labels that change while an alert fires: Alertmanager identifies alerts by their labels,
# so these travel as annotations there.
VOLATILE_LABELS = ("status", "previous_status")
REQUIRED_LABELS = ("alertname", "service_id", "service_name", "status", "source", "owner")
_ID = re.compile(r"[\w-]+")
Clock = Callable[[], float]  # seconds since the epoch


@dataclass(frozen=True)
class AlertLine:
    """One alert's change inside a message."""

    state: str  # "firing" | "resolved"
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    url: str  # the service's page on the dashboard, "" when unknown
    fingerprint: str


@dataclass(frozen=True)
class Notification:
    """One grouped message: one channel, one rule, one evaluation."""

    rule: str
    alerts: tuple[AlertLine, ...]
    external_url: str
    message_id: str  # the same on every retry, so a receiver can drop a duplicate

    @property
    def status(self) -> str:
        return "firing" if any(a.state == "firing" for a in self.alerts) else "resolved"


class ChannelConfigError(ValueError):
    """A channel that cannot work as configured; the message names the field."""

    def __init__(self, channel: str, field_name: str, problem: str):
        super().__init__(f"channel {channel!r}: {field_name} {problem}")
        self.field = field_name


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    kind: str
    url: str = ""
    secret: str = ""
    to: tuple[str, ...] = ()
    project_id: str = ""
    topic_urn: str = ""
    ak: str = ""
    sk: str = ""

    def validate(self) -> None:
        """Raise ChannelConfigError for the first field that would make delivery fail.
        Messages never quote a secret, nor the URL (WeCom's and DingTalk's carry keys)."""
        if not self.name.strip():
            raise ChannelConfigError(self.name, "name", _("is required"))
        if self.kind not in KINDS:
            raise ChannelConfigError(
                self.name, "kind", _("must be one of %(kinds)s") % {"kinds": ", ".join(KINDS)}
            )
        if self.kind == "email":
            self._check_to()
        else:
            self._check_url()
        if self.secret and self.kind not in ("webhook", "dingtalk", "feishu"):
            raise ChannelConfigError(
                self.name, "secret", _("is not used by %(kind)s channels") % {"kind": self.kind}
            )
        check = getattr(self, f"_check_{self.kind}", None)
        if check is not None:
            check()

    def _fail(self, field_name: str, problem: str) -> NoReturn:
        raise ChannelConfigError(self.name, field_name, problem)

    def _check_url(self) -> None:
        parts = urlsplit(self.url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self._fail("url", _("must be an http(s) address like https://host/path"))
        if any(ch.isspace() or ord(ch) < 32 for ch in self.url):
            self._fail("url", _("must not contain spaces or control characters"))

    def _check_to(self) -> None:
        if not self.to:
            self._fail("to", _("needs at least one email address"))
        for address in self.to:
            try:
                validate_email(address)
            except ValidationError:
                self._fail("to", _("has an invalid email address: %(a)r") % {"a": address})

    def _check_webhook(self) -> None:
        if self.secret and not webhook_key(self.secret):
            self._fail("secret", _("must be whsec_ followed by a base64 key (Standard Webhooks)"))

    def _check_wecom(self) -> None:
        if "key" not in dict(parse_qsl(urlsplit(self.url).query)):
            self._fail("url", _("must carry the robot's key (…/webhook/send?key=…)"))

    def _check_dingtalk(self) -> None:
        if "access_token" not in dict(parse_qsl(urlsplit(self.url).query)):
            self._fail("url", _("must carry the robot's access_token (…/send?access_token=…)"))

    def _check_smn(self) -> None:
        for name in ("project_id", "ak"):
            if not _ID.fullmatch(getattr(self, name)):
                self._fail(name, _("is required for SMN (letters, digits, - and _)"))
        if not self.sk.strip() or any(ch.isspace() for ch in self.sk):
            self._fail("sk", _("is required for SMN, without spaces"))
        urn = self.topic_urn
        if not urn.startswith("urn:smn:") or "/" in urn or any(ch.isspace() for ch in urn):
            self._fail("topic_urn", _("must be the topic's URN, urn:smn:region:project:name"))


@dataclass(frozen=True)
class Delivery:
    """What the receiver said."""

    ok: bool
    status_code: int | None  # HTTP status; for email the SMTP reply code of a refusal
    answer: str  # its body, cut and scrubbed of the channel's secrets
    retry_after: float | None  # seconds it asked us to wait (429/503 Retry-After, throttling)
    error: str = ""  # for a person, when not ok; never holds a secret


@dataclass(frozen=True)
class _Request:
    url: str
    body: bytes
    headers: dict[str, str]
    secrets: tuple[str, ...] = ()  # credentials bound to this request, e.g. DingTalk's sign


def deliver(
    channel: ChannelConfig,
    notification: Notification,
    *,
    timeout: float = 10,
    now: Clock = time.time,
) -> Delivery:
    """Send the message once through the channel and report the receiver's answer."""
    try:
        channel.validate()
    except ChannelConfigError as exc:
        return Delivery(False, None, "", None, str(exc))
    if channel.kind == "email":
        return _send_email(channel, notification, timeout)
    request = _BUILDERS[channel.kind](channel, notification, now)
    return _post(channel, request, timeout, now)


# Building each receiver's request.


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _headers() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the engine's times are UTC
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _labels(notification: Notification, alert: AlertLine) -> dict[str, str]:
    labels = dict.fromkeys(REQUIRED_LABELS, "")
    labels.update({str(k): str(v) for k, v in alert.labels.items()})
    labels["alertname"] = labels["alertname"] or notification.rule
    return labels


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first, *rest = maps
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


def webhook_payload(
    channel: ChannelConfig, notification: Notification, now: Clock = time.time
) -> dict:
    """Alertmanager's webhook payload, version 4, which many bridges already read."""
    alerts = [
        {
            "status": alert.state,
            "labels": _labels(notification, alert),
            "annotations": dict(alert.annotations),
            "startsAt": rfc3339(alert.starts_at),
            "endsAt": _ends_at(alert, now) if alert.state == "resolved" else ZERO_TIME,
            "generatorURL": alert.url,
            "fingerprint": alert.fingerprint,
        }
        for alert in notification.alerts
    ]
    return {
        "version": "4",
        "groupKey": f"{{}}:{{alertname={json.dumps(notification.rule)}}}",
        "truncatedAlerts": 0,
        "status": notification.status,
        "receiver": channel.name,
        "groupLabels": {"alertname": notification.rule},
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": notification.external_url,
        "alerts": alerts,
    }


def _ends_at(alert: AlertLine, now: Clock) -> str:
    return rfc3339(alert.ends_at or datetime.fromtimestamp(now(), UTC))


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (whsec_<base64>); b"" if it is not one."""
    if not secret.startswith("whsec_"):
        return b""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return b""


def standard_webhooks_headers(
    secret: str, message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature (v1, HMAC-SHA256 of
    "id.timestamp.body") per the Standard Webhooks spec."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(webhook_key(secret), signed, hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def _webhook(channel: ChannelConfig, notification: Notification, now: Clock) -> _Request:
    body = _json(webhook_payload(channel, notification, now))
    headers = _headers()
    if channel.secret:
        stamp = int(now())
        headers.update(
            standard_webhooks_headers(channel.secret, notification.message_id, stamp, body)
        )
    return _Request(channel.url, body, headers)


def postable_alerts(notification: Notification, now: Clock) -> list[dict]:
    """Alertmanager API v2 alerts. A firing one has no endsAt (Alertmanager gives it its
    resolve_timeout); a resolved one ends when it ended."""
    alerts = []
    for alert in notification.alerts:
        labels = {k: v for k, v in _labels(notification, alert).items() if v}
        annotations = {k: str(v) for k, v in alert.annotations.items()}
        for name in VOLATILE_LABELS:
            if name in labels:
                annotations[name] = labels.pop(name)
        item = {"labels": labels, "annotations": annotations, "startsAt": rfc3339(alert.starts_at)}
        if alert.state == "resolved":
            item["endsAt"] = _ends_at(alert, now)
        if alert.url:
            item["generatorURL"] = alert.url
        alerts.append(item)
    return alerts


def _alertmanager(channel: ChannelConfig, notification: Notification, now: Clock) -> _Request:
    url = channel.url.rstrip("/") + "/api/v2/alerts"
    return _Request(url, _json(postable_alerts(notification, now)), _headers())


def _slack(channel: ChannelConfig, notification: Notification, now: Clock) -> _Request:
    text = messages.render(notification, messages.SLACK)
    return _Request(channel.url, _json({"text": text}), _headers())


def _wecom(channel: ChannelConfig, notification: Notification, now: Clock) -> _Request:
    content = messages.fit(notification, messages.MARKDOWN, TEXT_BYTES["wecom"])
    body = {"msgtype": "markdown", "markdown": {"content": content}}
    return _Request(channel.url, _json(body), _headers())


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """base64 HMAC-SHA256 of "timestamp\\nsecret" keyed with the secret (not yet urlencoded)."""
    message = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def _dingtalk(channel: ChannelConfig, notification: Notification, now: Clock) -> _Request:
    text = messages.fit(notification, messages.MARKDOWN, TEXT_BYTES["dingtalk"])
    title = messages.title(notification, messages.neutral)
    body = {
        "msgtype": "markdown",
        "markdown": {"title": title, "text": text},
        "at": {"isAtAll": False, "atMobiles": [], "atUserIds": []},
    }
    if not channel.secret:
        return _Request(channel.url, _json(body), _headers())
    stamp = int(now() * 1000)
    sign = dingtalk_sign(channel.secret, stamp)
    url = _with_query(channel.url, {"timestamp": str(stamp), "sign": sign})
    return _Request(url, _json(body), _headers(), secrets=(sign,))


def _with_query(url: str, extra: dict[str, str]) -> str:
    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in extra]
    query = urlencode([*pairs, *extra.items()], quote_via=quote)
    return parts._replace(query=query).geturl()


def feishu_sign(secret: str, timestamp: int) -> str:
    """base64 HMAC-SHA256 keyed with "timestamp\\nsecret" over an empty message."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def _feishu(channel: ChannelConfig, notification: Notification, now: Clock) -> _Request:
    text = messages.fit(notification, messages.CHAT_TEXT, TEXT_BYTES["feishu"])
    body: dict = {"msg_type": "text", "content": {"text": text}}
    if not channel.secret:
        return _Request(channel.url, _json(body), _headers())
    stamp = int(now())
    sign = feishu_sign(channel.secret, stamp)
    body = {"timestamp": str(stamp), "sign": sign, **body}
    return _Request(channel.url, _json(body), _headers(), secrets=(sign,))


def _smn(channel: ChannelConfig, notification: Notification, now: Clock) -> _Request:
    """Publish to an SMN topic, signed with AK/SK as the ModelArts client signs."""
    path = (
        f"/v2/{quote(channel.project_id, safe='')}/notifications/topics/"
        f"{quote(channel.topic_urn, safe=':')}/publish"
    )
    url = channel.url.rstrip("/") + path
    subject = messages.title(notification, messages.neutral)
    subject = subject.encode()[:SMN_SUBJECT_BYTES].decode("utf-8", "ignore")
    text = messages.fit(notification, messages.CHAT_TEXT, TEXT_BYTES["smn"])
    body = _json({"subject": subject, "message": text})
    headers = {
        **_headers(),
        "Host": _host_header(url),
        "X-Project-Id": channel.project_id,
        DATE_HEADER: format_sdk_date(now()),
    }
    return _Request(url, body, sign_headers("POST", url, headers, body, channel.ak, channel.sk))


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


_BUILDERS: dict[str, Callable[[ChannelConfig, Notification, Clock], _Request]] = {
    "webhook": _webhook,
    "alertmanager": _alertmanager,
    "slack": _slack,
    "wecom": _wecom,
    "dingtalk": _dingtalk,
    "feishu": _feishu,
    "smn": _smn,
}


# Sending and reading the answer.


def _post(channel: ChannelConfig, request: _Request, timeout: float, now: Clock) -> Delivery:
    secrets = _secrets(channel, request.secrets)
    try:
        # No redirects: a 3xx is reported, never followed to wherever it points.
        with requests.post(
            request.url,
            data=request.body,
            headers=request.headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        ) as response:
            raw = _read(response)
    except requests.RequestException as exc:
        reason = _unreachable(exc, timeout)
        where = shown_url(channel.kind, request.url)
        return Delivery(False, None, "", None, scrub(f"{reason}: {where}", secrets))
    return _judge(channel.kind, response, raw, secrets, now)


def _read(response: requests.Response) -> bytes:
    raw = b""
    for chunk in response.iter_content(8192):
        raw += chunk
        if len(raw) >= ANSWER_READ:
            break
    return raw


def _judge(
    kind: str, response: requests.Response, raw: bytes, secrets: list[str], now: Clock
) -> Delivery:
    status = response.status_code
    answer = scrub(raw.decode("utf-8", "replace"), secrets)[:ANSWER_LIMIT]
    if not 200 <= status < 300:
        retry = (
            _retry_after(response.headers.get("Retry-After"), now) if status in (429, 503) else None
        )
        error = f"HTTP {status}"
        detail = _detail(raw)
        if detail:
            error += f": {detail}"
        return Delivery(False, status, answer, retry, scrub(error, secrets))
    problem = _vendor_problem(kind, raw)
    if problem is not None:
        error, retry = problem
        return Delivery(False, status, answer, retry, scrub(error, secrets))
    return Delivery(True, status, answer, None)


def _vendor_problem(kind: str, raw: bytes) -> tuple[str, float | None] | None:
    """WeCom, DingTalk and Feishu answer HTTP 200 to failures too: their code says."""
    if kind not in ("wecom", "dingtalk", "feishu"):
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return _("the answer is not the receiver's JSON"), None
    if kind == "feishu":
        name, code = "code", data.get("code", data.get("StatusCode"))
        text = data.get("msg", data.get("StatusMessage", ""))
    else:
        name, code, text = "errcode", data.get("errcode"), data.get("errmsg", "")
    if code == 0:
        return None
    if code is None:
        return _("the answer has no %(name)s") % {"name": name}, None
    error = f"{name} {code}: {_short(text)}"
    return error, THROTTLED.get((kind, code)) if isinstance(code, int) else None


def _detail(raw: bytes) -> str:
    """A short reason from an error body: the vendor's code and message when it is JSON."""
    try:
        data = json.loads(raw)
    except ValueError:
        return _short(raw.decode("utf-8", "replace"))
    if not isinstance(data, dict):
        return _short(json.dumps(data))
    if isinstance(data.get("error"), dict):
        data = data["error"]
    for code_key, text_key in (
        ("error_code", "error_msg"),
        ("errcode", "errmsg"),
        ("code", "msg"),
        ("code", "message"),
    ):
        if code_key in data or text_key in data:
            return _short(f"{data.get(code_key, '')} {data.get(text_key, '')}".strip())
    return _short(json.dumps(data, ensure_ascii=False))


def _short(value: object, limit: int = 200) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after(value: str | None, now: Clock) -> float | None:
    """Seconds from a Retry-After of seconds or an HTTP date, kept within MAX_RETRY_AFTER."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _unreachable(exc: requests.RequestException, timeout: float) -> str:
    """Why no answer came, in words: never str(exc), which quotes the URL with its keys."""
    if isinstance(exc, requests.Timeout):
        return _("no answer within %(seconds)s s") % {"seconds": f"{timeout:g}"}
    if isinstance(exc, requests.exceptions.SSLError):
        return _("TLS handshake failed")
    if isinstance(exc, requests.ConnectionError):
        if _caused_by(exc, lambda e: isinstance(e, ConnectionRefusedError)):
            return _("connection refused")
        if _caused_by(exc, lambda e: isinstance(e, READ_TIMEOUTS)):
            # A body that stalls after the headers times out inside a ConnectionError.
            return _("no answer within %(seconds)s s") % {"seconds": f"{timeout:g}"}
        if _caused_by(exc, lambda e: isinstance(e, socket.gaierror)):
            return _("host name not found")
        if _caused_by(exc, lambda e: getattr(e, "errno", None) == errno.ECONNRESET):
            return _("connection reset")
        return _("could not connect")
    return _("request failed (%(kind)s)") % {"kind": type(exc).__name__}


# Not urllib3's TimeoutError: its NewConnectionError (a refused connection) is one.
READ_TIMEOUTS = (TimeoutError, urllib3.exceptions.ReadTimeoutError)


def _caused_by(exc: BaseException, test: Callable[[BaseException], bool]) -> bool:
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if test(current):
            return True
        # urllib3 keeps the socket error in .reason; requests wraps it in args.
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        pending += [arg for arg in current.args if isinstance(arg, BaseException)]
    return False


def shown_url(kind: str, url: str) -> str:
    """A URL fit for an error message: no user info, the query masked, and Slack's and
    Feishu's hook token (the path's last part) masked."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    path = parts.path
    if kind in ("slack", "feishu") and path.strip("/"):
        path = path.rstrip("/").rsplit("/", 1)[0] + "/…"
    return f"{parts.scheme}://{host}{path}" + ("?…" if parts.query else "")


def _secrets(channel: ChannelConfig, extra: Iterable[str] = ()) -> list[str]:
    """Every secret of the channel, in the forms an echo could show it, longest first."""
    parts = urlsplit(channel.url)
    values = [channel.secret, channel.secret.removeprefix("whsec_"), channel.sk, *extra]
    values += [value for _, value in parse_qsl(parts.query)]
    values.append(parts.password or "")
    if channel.kind in ("slack", "feishu"):
        values.append(parts.path.rstrip("/").rsplit("/", 1)[-1])
    if channel.kind == "email":
        values.append(settings.EMAIL_HOST_PASSWORD or "")
    forms = set()
    for value in values:
        if value:
            forms |= {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    return sorted(forms, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, HIDDEN)
    return text


# Email.


def _send_email(channel: ChannelConfig, notification: Notification, timeout: float) -> Delivery:
    """Through Django's configured mail backend (EMAIL_* settings); a plain-text part always,
    an HTML part with every value escaped."""
    sender = settings.DEFAULT_FROM_EMAIL
    domain = sender.rpartition("@")[2].strip("> ") or "localhost"
    message = EmailMultiAlternatives(
        subject=messages.title(notification),
        body=messages.render(notification, messages.PLAIN),
        from_email=sender,
        to=list(channel.to),
        connection=get_connection(timeout=timeout),
        # The same Message-ID on a retry lets mail clients show a duplicate once.
        headers={"Message-ID": f"<{notification.message_id}@{domain}>"},
    )
    message.attach_alternative(messages.html(notification), "text/html")
    secrets = _secrets(channel)
    try:
        sent = message.send()
    except smtplib.SMTPResponseException as exc:
        reply = exc.smtp_error
        reply = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        error = scrub(f"SMTP {exc.smtp_code}: {_short(reply)}", secrets)
        return Delivery(False, exc.smtp_code, "", None, error)
    except smtplib.SMTPRecipientsRefused as exc:
        refused = _short(", ".join(sorted(exc.recipients)))
        error = _("every recipient was refused: %(r)s") % {"r": refused}
        return Delivery(False, None, "", None, error)
    except (smtplib.SMTPException, OSError) as exc:
        where = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
        error = _("could not send through %(where)s: %(why)s") % {
            "where": where,
            "why": _mail_failure(exc, timeout),
        }
        return Delivery(False, None, "", None, scrub(error, secrets))
    if not sent:
        return Delivery(False, None, "", None, _("the mail backend sent nothing"))
    answer = _("accepted for %(n)d recipient(s)") % {"n": len(channel.to)}
    return Delivery(True, None, answer, None)


def _mail_failure(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return _("no answer within %(seconds)s s") % {"seconds": f"{timeout:g}"}
    if isinstance(exc, ConnectionRefusedError):
        return _("connection refused")
    if isinstance(exc, socket.gaierror):
        return _("host name not found")
    return _short(f"{type(exc).__name__} {exc}")
