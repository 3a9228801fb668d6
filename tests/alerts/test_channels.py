"""Each channel over real HTTP (or SMTP): the vendor's wire format, its signature recomputed
here from the published algorithm, and every way a receiver can fail."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import formatdate
from urllib.parse import quote, unquote

import pytest
from receivers import (
    ENDED,
    STARTED,
    FakeReceiver,
    Reply,
    SMTPReceiver,
    alert_line,
    closed_url,
    notification,
)

from dashboard.alerts.channels import (
    HIDDEN,
    RATE_LIMITS,
    ChannelConfig,
    deliver,
    standard_webhooks_headers,
)
from dashboard.devtools.simulator.identity import AkSkVerifier

CLOCK = 1_767_225_600.0  # 2026-01-01T00:00:00Z
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
WECOM_KEY = "wecom-key-6f1d2a"
DING_TOKEN = "ding-token-93c0e1"
DING_SECRET = "SECding0secret4242"
FEISHU_HOOK = "feishu-hook-77ab0c"
FEISHU_SECRET = "feishu-secret-1c2d"
SLACK_TOKEN = "slack-token-5e5e5e"
AK, SK = "EXAMPLEAK0000000000", "ExampleSecretKey0000000000000000000000000"
PROJECT = "0123456789abcdef0123456789abcdef"
TOPIC = f"urn:smn:cn-north-4:{PROJECT}:ops-alerts"


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver() as running:
        yield running


def channel(kind: str, base: str, **fields) -> ChannelConfig:
    """A channel of `kind` whose URL points at `base` with the vendor's own path."""
    urls = {
        "webhook": f"{base}/hooks/alerts",
        "alertmanager": base,
        "slack": f"{base}/services/T0001/B0001/{SLACK_TOKEN}",
        "wecom": f"{base}/cgi-bin/webhook/send?key={WECOM_KEY}",
        "dingtalk": f"{base}/robot/send?access_token={DING_TOKEN}",
        "feishu": f"{base}/open-apis/bot/v2/hook/{FEISHU_HOOK}",
        "smn": base,
    }
    extra = {"smn": {"project_id": PROJECT, "topic_urn": TOPIC, "ak": AK, "sk": SK}}
    return ChannelConfig(
        name=f"ops-{kind}", kind=kind, url=urls[kind], **{**extra.get(kind, {}), **fields}
    )


def b64_hmac(key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def mixed():
    return notification(
        alert_line("svc-a", service_id="s-1"),
        alert_line(
            "svc-b",
            service_id="s-2",
            state="resolved",
            status="running",
            previous="failed",
            rate=None,
        ),
    )


# The generic webhook: Alertmanager's payload, signed per Standard Webhooks.


def test_it_posts_the_alertmanager_webhook_payload_version_4(receiver):
    delivery = deliver(channel("webhook", receiver.url), mixed())
    assert delivery.ok and delivery.status_code == 200 and delivery.answer == "ok"
    seen = receiver.last
    assert (seen.method, seen.path) == ("POST", "/hooks/alerts")
    assert seen.headers["Content-Type"] == "application/json"
    assert "webhook-signature" not in seen.headers  # no secret, no signature
    body = seen.json()
    assert body["version"] == "4"
    assert body["status"] == "firing"  # one of them still fires
    assert body["receiver"] == "ops-webhook"
    assert body["groupLabels"] == {"alertname": "failing-services"}
    assert body["groupKey"] == '{}:{alertname="failing-services"}'
    assert body["truncatedAlerts"] == 0
    assert body["externalURL"] == "http://dashboard.test"
    assert body["commonLabels"] == {
        "alertname": "failing-services",
        "source": "sim",
        "owner": "alice",
    }
    firing, resolved = body["alerts"]
    for alert in (firing, resolved):
        assert set(alert) == {
            "status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"
        }  # fmt: skip
        labels = alert["labels"]
        assert {"alertname", "service_id", "service_name", "status", "source", "owner"} <= set(
            labels
        )
        assert datetime.fromisoformat(alert["startsAt"]) == STARTED
    assert firing["status"] == "firing" and firing["endsAt"] == "0001-01-01T00:00:00Z"
    assert firing["labels"]["service_name"] == "svc-a"
    assert firing["annotations"]["failure_rate"] == "12.50%"
    assert firing["generatorURL"] == "http://dashboard.test/services/s-1/?source=sim"
    assert firing["fingerprint"] == alert_line(service_id="s-1").fingerprint
    assert resolved["status"] == "resolved"
    assert datetime.fromisoformat(resolved["endsAt"]) == ENDED


def test_an_all_resolved_message_is_resolved(receiver):
    deliver(channel("webhook", receiver.url), notification(alert_line(state="resolved")))
    assert receiver.last.json()["status"] == "resolved"


def test_the_signing_helper_matches_the_standard_webhooks_example():
    # The specification's own example (standard-webhooks, libraries' test suites).
    headers = standard_webhooks_headers(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert headers == {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }


def test_it_signs_webhooks_per_standard_webhooks_with_the_same_id_on_a_retry(receiver):
    message = mixed()
    hook = channel("webhook", receiver.url, secret=WEBHOOK_SECRET)
    assert deliver(hook, message, now=lambda: CLOCK).ok
    assert deliver(hook, message, now=lambda: CLOCK + 30).ok
    first, retry = receiver.seen
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    for seen, stamp in ((first, "1767225600"), (retry, "1767225630")):
        assert seen.headers["webhook-id"] == message.message_id
        assert seen.headers["webhook-timestamp"] == stamp
        signed = f"{message.message_id}.{stamp}.".encode() + seen.body
        version, _, signature = seen.headers["webhook-signature"].partition(",")
        assert version == "v1"
        assert hmac.compare_digest(signature, b64_hmac(key, signed))


# Alertmanager API v2.


@pytest.mark.parametrize("slash", ["", "/"])
def test_it_posts_postable_alerts_to_alertmanager(receiver, slash):
    delivery = deliver(channel("alertmanager", receiver.url + slash), mixed(), now=lambda: CLOCK)
    assert delivery.ok
    seen = receiver.last
    assert (seen.method, seen.path) == ("POST", "/api/v2/alerts")
    assert seen.headers["Content-Type"] == "application/json"
    firing, resolved = seen.json()
    for alert in (firing, resolved):
        assert set(alert) <= {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
        assert alert["labels"]["alertname"] == "failing-services"
        # Labels identify an alert: a status change must not make it a new one.
        assert "status" not in alert["labels"] and "previous_status" not in alert["labels"]
        assert datetime.fromisoformat(alert["startsAt"]) == STARTED
    assert firing["labels"]["service_id"] == "s-1"
    assert firing["annotations"]["status"] == "failed"
    assert "endsAt" not in firing  # Alertmanager keeps it firing for its resolve_timeout
    assert datetime.fromisoformat(resolved["endsAt"]) == ENDED
    assert firing["generatorURL"] == "http://dashboard.test/services/s-1/?source=sim"


# Chat tools.


def test_it_posts_slack_incoming_webhook_text(receiver):
    assert deliver(channel("slack", receiver.url), mixed()).ok
    seen = receiver.last
    assert seen.path == f"/services/T0001/B0001/{SLACK_TOKEN}"
    assert seen.headers["Content-Type"] == "application/json"
    body = seen.json()
    assert list(body) == ["text"]
    assert body["text"].startswith("*[FIRING 1, RESOLVED 1] failing-services*")
    assert "<http://dashboard.test/services/s-1/?source=sim|open>" in body["text"]


def test_it_posts_wecom_markdown_to_the_robot_key(receiver):
    receiver.default = Reply(body={"errcode": 0, "errmsg": "ok"})
    delivery = deliver(channel("wecom", receiver.url), mixed())
    assert delivery.ok, delivery.error
    seen = receiver.last
    assert seen.path == "/cgi-bin/webhook/send" and seen.params == {"key": WECOM_KEY}
    body = seen.json()
    assert body["msgtype"] == "markdown" and set(body) == {"msgtype", "markdown"}
    content = body["markdown"]["content"]
    assert content.startswith("### [FIRING 1, RESOLVED 1] failing-services")
    assert len(content.encode()) <= 4096


def test_it_signs_dingtalk_messages_with_a_millisecond_timestamp(receiver):
    receiver.default = Reply(body={"errcode": 0, "errmsg": "ok"})
    delivery = deliver(channel("dingtalk", receiver.url, secret=DING_SECRET), mixed())
    assert delivery.ok, delivery.error
    seen = receiver.last
    assert seen.path == "/robot/send"
    params = seen.params
    assert set(params) == {"access_token", "timestamp", "sign"}
    assert params["access_token"] == DING_TOKEN
    stamp = params["timestamp"]
    assert abs(int(stamp) - time.time() * 1000) < 60_000
    expected = b64_hmac(DING_SECRET.encode(), f"{stamp}\n{DING_SECRET}".encode())
    assert params["sign"] == expected
    raw_sign = seen.query.rpartition("sign=")[2]
    assert raw_sign == quote(expected, safe="")  # urlencoded: + / = never raw
    body = seen.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "[FIRING 1, RESOLVED 1] failing-services"
    assert body["markdown"]["text"].startswith("### [FIRING 1, RESOLVED 1] failing-services")
    assert body["at"]["isAtAll"] is False


def test_dingtalk_without_a_secret_sends_only_its_token(receiver):
    receiver.default = Reply(body={"errcode": 0, "errmsg": "ok"})
    assert deliver(channel("dingtalk", receiver.url), mixed()).ok
    assert receiver.last.params == {"access_token": DING_TOKEN}


def test_it_signs_feishu_messages_with_a_key_of_timestamp_and_secret(receiver):
    receiver.default = Reply(body={"code": 0, "msg": "success", "data": {}})
    delivery = deliver(channel("feishu", receiver.url, secret=FEISHU_SECRET), mixed())
    assert delivery.ok, delivery.error
    seen = receiver.last
    assert seen.path == f"/open-apis/bot/v2/hook/{FEISHU_HOOK}"
    body = seen.json()
    assert set(body) == {"timestamp", "sign", "msg_type", "content"}
    assert body["msg_type"] == "text"
    assert body["content"]["text"].startswith("[FIRING 1, RESOLVED 1] failing-services")
    stamp = body["timestamp"]
    assert isinstance(stamp, str) and abs(int(stamp) - time.time()) < 60
    # Feishu keys the HMAC with "timestamp\nsecret" and signs nothing.
    assert body["sign"] == b64_hmac(f"{stamp}\n{FEISHU_SECRET}".encode(), b"")


def test_feishu_without_a_secret_sends_no_signature(receiver):
    receiver.default = Reply(body={"code": 0, "msg": "success"})
    assert deliver(channel("feishu", receiver.url), mixed()).ok
    assert set(receiver.last.json()) == {"msg_type", "content"}


def test_the_feishu_rate_limits_are_the_documented_ones():
    assert RATE_LIMITS == {"dingtalk": (20, 60), "wecom": (20, 60), "feishu": (5, 1)}


# Huawei Cloud SMN.


def sdk_signature(method: str, target: str, headers, signed: list[str], body: bytes, sk: str):
    """SDK-HMAC-SHA256 (API.md §3b), written here apart from the product's signer."""
    path, _, query = target.partition("?")
    uri = "/".join(quote(segment, safe="") for segment in unquote(path).split("/"))
    uri = uri if uri.endswith("/") else uri + "/"
    pairs = sorted(part.split("=", 1) for part in query.split("&") if part)
    canonical_query = "&".join(f"{name}={value}" for name, value in pairs)
    lines = "".join(f"{name}:{headers[name].strip()}\n" for name in signed)
    digest = hashlib.sha256(body).hexdigest()
    canonical = "\n".join([method, uri, canonical_query, lines, ";".join(signed), digest])
    hashed = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = f"SDK-HMAC-SHA256\n{headers['X-Sdk-Date']}\n{hashed}"
    return hmac.new(sk.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def test_the_tests_signer_matches_huaweis_published_example():
    headers = {
        "content-type": "application/json",
        "host": "service.region.example.com",
        "x-sdk-date": "20191115T033655Z",
        "X-Sdk-Date": "20191115T033655Z",
    }
    target = (
        "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs"
        "?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0"
    )
    signed = ["content-type", "host", "x-sdk-date"]
    signature = sdk_signature(
        "GET", target, headers, signed, b"", "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"
    )
    assert signature == "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"


def test_it_publishes_to_an_smn_topic_signed_with_ak_sk(receiver):
    receiver.default = Reply(body={"request_id": "r1", "message_id": "m1"})
    delivery = deliver(channel("smn", receiver.url), mixed())
    assert delivery.ok, delivery.error
    seen = receiver.last
    assert seen.method == "POST"
    assert seen.path == f"/v2/{PROJECT}/notifications/topics/{TOPIC}/publish"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["X-Project-Id"] == PROJECT
    body = seen.json()
    assert set(body) == {"subject", "message"}
    assert body["subject"] == "[FIRING 1, RESOLVED 1] failing-services"
    assert "svc-a" in body["message"] and "svc-b" in body["message"]
    # The simulator's gateway check (API.md §3b) accepts it ...
    AkSkVerifier(AK, SK, None, time.time).verify("POST", seen.target, seen.headers, seen.body)
    # ... and so does the algorithm written out here: body hash included, host signed.
    authorization = seen.headers["Authorization"]
    assert authorization.startswith(f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=")
    names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-sdk-date", "content-type", "x-project-id"} <= set(names)
    assert seen.headers["Host"] == receiver.url.removeprefix("http://")
    expected = sdk_signature("POST", seen.target, seen.headers, names, seen.body, SK)
    assert authorization.endswith(f"Signature={expected}")
    sdk_date = datetime.strptime(seen.headers["X-Sdk-Date"], "%Y%m%dT%H%M%SZ")
    assert abs(sdk_date.replace(tzinfo=UTC).timestamp() - time.time()) < 60


# Email.


@pytest.fixture
def smtp(settings) -> Iterator[SMTPReceiver]:
    with SMTPReceiver() as running:
        use_smtp(settings, running)
        yield running


def use_smtp(settings, server: SMTPReceiver, **extra) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = "alerts@dashboard.test"
    for name, value in extra.items():
        setattr(settings, name, value)


def mail_channel() -> ChannelConfig:
    return ChannelConfig(name="ops-mail", kind="email", to=("a@example.com", "b@example.com"))


def test_it_emails_a_text_and_an_html_part(smtp):
    delivery = deliver(mail_channel(), mixed())
    assert delivery.ok, delivery.error
    (message,) = smtp.messages
    assert smtp.envelopes == [("alerts@dashboard.test", ["a@example.com", "b@example.com"])]
    assert message["Subject"] == "[FIRING 1, RESOLVED 1] failing-services"
    assert message["From"] == "alerts@dashboard.test"
    assert message["To"] == "a@example.com, b@example.com"
    assert message["Message-ID"] == "<msg_2Yd8example0001@dashboard.test>"  # same on a retry
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "svc-a" in text and "http://dashboard.test/services/s-1/?source=sim" in text
    assert '<a href="http://dashboard.test/services/s-1/?source=sim">' in html


def test_a_refused_mail_is_a_failed_delivery(settings):
    with SMTPReceiver(data_reply="554 5.7.1 rejected as spam") as server:
        use_smtp(settings, server)
        delivery = deliver(mail_channel(), mixed())
    assert not delivery.ok
    assert delivery.status_code == 554 and "rejected as spam" in delivery.error


def test_a_down_mail_server_is_a_failed_delivery(settings):
    with SMTPReceiver() as server:
        use_smtp(settings, server)
    delivery = deliver(mail_channel(), mixed(), timeout=2)
    assert not delivery.ok and "connection refused" in delivery.error


def test_the_mail_password_never_shows_in_an_error(settings):
    password = "mail-pass-0f9e8d"
    with SMTPReceiver(auth_reply=f"535 5.7.8 bad credentials {password}") as server:
        use_smtp(settings, server, EMAIL_HOST_USER="alerts", EMAIL_HOST_PASSWORD=password)
        delivery = deliver(mail_channel(), mixed())
    assert not delivery.ok and delivery.status_code == 535
    assert password not in delivery.error and HIDDEN in delivery.error


# When receivers fail.


def test_a_server_error_is_a_failed_delivery_with_its_status(receiver):
    receiver.default = Reply(status=500, body="database is down")
    delivery = deliver(channel("webhook", receiver.url), mixed())
    assert not delivery.ok and delivery.status_code == 500
    assert delivery.error == "HTTP 500: database is down"
    assert delivery.answer == "database is down" and delivery.retry_after is None


def test_a_throttled_receiver_says_how_long_to_wait(receiver):
    receiver.default = Reply(status=429, body="rate_limited", headers={"Retry-After": "120"})
    delivery = deliver(channel("slack", receiver.url), mixed())
    assert not delivery.ok and (delivery.status_code, delivery.retry_after) == (429, 120)


def test_a_retry_after_date_becomes_seconds(receiver):
    later = formatdate(CLOCK + 90, usegmt=True)
    receiver.default = Reply(status=503, headers={"Retry-After": later})
    delivery = deliver(channel("webhook", receiver.url), mixed(), now=lambda: CLOCK)
    assert delivery.retry_after == 90


def test_a_retry_after_is_bounded(receiver):
    receiver.default = Reply(status=429, headers={"Retry-After": "31536000"})
    assert deliver(channel("webhook", receiver.url), mixed()).retry_after == 3600


@pytest.mark.parametrize(
    ("kind", "answer", "error"),
    [
        (
            "dingtalk",
            {"errcode": 310000, "errmsg": "sign not match"},
            "errcode 310000: sign not match",
        ),
        (
            "wecom",
            {"errcode": 93000, "errmsg": "invalid webhook url"},
            "errcode 93000: invalid webhook url",
        ),
        ("feishu", {"code": 19021, "msg": "sign match fail"}, "code 19021: sign match fail"),
        ("feishu", b"<html>gateway</html>", "the answer is not the receiver's JSON"),
    ],
)
def test_a_vendor_error_code_with_http_200_is_a_failed_delivery(receiver, kind, answer, error):
    receiver.default = Reply(body=answer)
    delivery = deliver(channel(kind, receiver.url), mixed())
    assert not delivery.ok and delivery.status_code == 200
    assert delivery.error == error


def test_a_vendor_throttling_code_asks_to_wait(receiver):
    receiver.default = Reply(body={"errcode": 130101, "errmsg": "send too fast"})
    delivery = deliver(channel("dingtalk", receiver.url), mixed())
    assert not delivery.ok and delivery.retry_after == 60


def test_a_closed_port_is_a_readable_failure():
    url = closed_url()
    delivery = deliver(channel("wecom", url.rstrip("/")), mixed(), timeout=2)
    assert not delivery.ok and delivery.status_code is None
    assert delivery.error.startswith("connection refused: http://127.0.0.1:")
    assert delivery.error.endswith("/cgi-bin/webhook/send?…")  # the key stays out
    assert WECOM_KEY not in delivery.error


def test_a_receiver_that_does_not_answer_in_time_is_a_failed_delivery(receiver):
    receiver.default = Reply(delay=3)
    started = time.monotonic()
    delivery = deliver(channel("webhook", receiver.url), mixed(), timeout=0.3)
    assert time.monotonic() - started < 2
    assert not delivery.ok and delivery.error.startswith("no answer within 0.3 s")


def test_a_receiver_that_stalls_after_its_headers_is_a_failed_delivery(receiver):
    receiver.default = Reply(body="x" * 100, stall=3)
    started = time.monotonic()
    delivery = deliver(channel("webhook", receiver.url), mixed(), timeout=0.3)
    assert time.monotonic() - started < 2
    assert not delivery.ok and delivery.error.startswith("no answer within 0.3 s")


def test_a_redirect_is_reported_not_followed(receiver):
    receiver.default = Reply(status=302, headers={"Location": "http://127.0.0.1:9/elsewhere"})
    delivery = deliver(channel("webhook", receiver.url), mixed())
    assert not delivery.ok and delivery.status_code == 302
    assert len(receiver.seen) == 1


def test_an_invalid_channel_is_a_failed_delivery_naming_the_field():
    delivery = deliver(ChannelConfig(name="ops", kind="smn", url="https://smn.test"), mixed())
    assert not delivery.ok and delivery.error.startswith("channel 'ops': project_id")


def test_a_long_answer_is_cut(receiver):
    receiver.default = Reply(body="x" * 100_000)
    assert len(deliver(channel("webhook", receiver.url), mixed()).answer) == 500


# Secrets never come back out, even from a receiver that echoes the request.


@pytest.mark.parametrize(
    ("kind", "fields", "secrets"),
    [
        ("wecom", {}, [WECOM_KEY]),
        ("dingtalk", {"secret": DING_SECRET}, [DING_TOKEN, DING_SECRET]),
        ("feishu", {"secret": FEISHU_SECRET}, [FEISHU_HOOK, FEISHU_SECRET]),
        ("slack", {}, [SLACK_TOKEN]),
        ("webhook", {"secret": WEBHOOK_SECRET}, [WEBHOOK_SECRET, WEBHOOK_SECRET[6:]]),
        ("smn", {}, [SK]),
    ],
)
@pytest.mark.parametrize("status", [200, 500])
def test_an_echoing_receiver_never_gets_a_secret_into_the_answer(
    receiver, kind, fields, secrets, status
):
    receiver.default = Reply(status=status, echo=True)
    delivery = deliver(channel(kind, receiver.url, **fields), mixed())
    assert delivery.answer.startswith("POST ")
    for secret in secrets:
        assert secret not in delivery.answer and secret not in delivery.error
    if kind in ("dingtalk", "feishu"):
        # The sign works for an hour whatever the body: it is a credential too.
        sign = receiver.last.params.get("sign") or receiver.last.json()["sign"]
        assert sign not in delivery.answer and quote(sign, safe="") not in delivery.answer
    if kind not in ("webhook", "smn"):  # (those two never send their secret)
        assert HIDDEN in delivery.answer


def test_the_echoed_request_shows_the_path_but_not_the_key(receiver):
    receiver.default = Reply(status=500, echo=True)
    delivery = deliver(channel("wecom", receiver.url), mixed())
    assert f"/cgi-bin/webhook/send?key={HIDDEN}" in delivery.answer
