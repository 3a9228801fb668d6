"""What a person reads in each channel, taken from what the fake receivers got: every fact of
an alert, ten alerts then "and N more", and data that mentions, links or styles nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from receivers import (
    FakeReceiver,
    Reply,
    SMTPReceiver,
    alert_line,
    many,
    notification,
)

from dashboard.alerts.channels import AlertLine, ChannelConfig, Notification, deliver

CHATS = ["slack", "wecom", "dingtalk", "feishu", "smn"]
HOSTILE = '<!channel> @all <at user_id="all"> [x](http://evil) <script>'
# What must not reach each channel in raw form: it would mention, link or run.
MARKDOWN_DANGERS = ["<!channel>", "@all", "@here", "<@U", "<at ", "[x](", "(http://evil", "**"]
DANGEROUS = {
    "slack": ["<!channel>", "<@U", "<at ", "<script>", "http://evil"],
    "wecom": [*MARKDOWN_DANGERS, "<script>", "http://evil"],
    "dingtalk": [*MARKDOWN_DANGERS, "<script>", "http://evil"],
    "feishu": [*MARKDOWN_DANGERS, "<script>", "http://evil"],
    "smn": [*MARKDOWN_DANGERS, "<script>", "http://evil"],
    "email-html": ["<!channel>", "<@U", "<at ", "<script>", 'href="http://evil'],
}


@pytest.fixture
def sent(settings) -> Iterator[Callable[[str, Notification], str]]:
    """Deliver through a kind of channel and return the message text its receiver got."""
    with FakeReceiver() as http, SMTPReceiver() as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False

        def send(kind: str, message: Notification) -> str:
            http.default = Reply(body={"errcode": 0, "code": 0, "message_id": "m"})
            delivery = deliver(config(kind, http.url), message)
            assert delivery.ok, delivery.error
            if kind.startswith("email"):
                part = "html" if kind == "email-html" else "plain"
                return smtp.messages[-1].get_body((part,)).get_content()
            return text_of(kind, http.last.json())

        yield send


def config(kind: str, base: str) -> ChannelConfig:
    if kind.startswith("email"):
        return ChannelConfig(name="mail", kind="email", to=("ops@example.com",))
    urls = {"wecom": "/send?key=k", "dingtalk": "/send?access_token=t"}
    smn = {"project_id": "p1", "topic_urn": "urn:smn:r:p1:t", "ak": "AK1", "sk": "SK1"}
    return ChannelConfig(
        name=kind, kind=kind, url=base + urls.get(kind, "/hook"), **(smn if kind == "smn" else {})
    )


def text_of(kind: str, body: dict) -> str:
    if kind == "slack":
        return body["text"]
    if kind == "wecom":
        return body["markdown"]["content"]
    if kind == "dingtalk":
        return body["markdown"]["title"] + "\n" + body["markdown"]["text"]
    if kind == "feishu":
        return body["content"]["text"]
    return body["subject"] + "\n" + body["message"]


@pytest.mark.parametrize("kind", [*CHATS, "email-text", "email-html"])
def test_it_lists_ten_alerts_then_says_how_many_more(sent, kind):
    text = sent(kind, many(25))
    assert "[FIRING 25] failing-services" in text
    assert all(f"svc-{n:02d}" in text for n in range(10))
    assert "svc-10" not in text and "svc-24" not in text
    assert "15 more" in text


@pytest.mark.parametrize("kind", [*CHATS, "email-text", "email-html"])
def test_a_short_message_lists_all_and_no_more(sent, kind):
    text = sent(kind, many(3))
    assert all(f"svc-{n:02d}" in text for n in range(3))
    assert "more" not in text


@pytest.mark.parametrize("kind", [*CHATS, "email-text"])
def test_each_line_names_the_service_its_statuses_source_owner_rate_and_link(sent, kind):
    text = sent(kind, notification(alert_line("svc-a", service_id="s-0001")))
    assert "svc-a" in text and "s-0001" in text
    assert "running → failed" in text
    assert "sim" in text and "alice" in text
    assert "12.50%" in text
    assert "http://dashboard.test/services/s-0001/?source=sim" in text
    assert "http://dashboard.test" in text


@pytest.mark.parametrize("kind", ["dingtalk", "slack", "email-html"])
def test_the_failure_rate_shows_only_when_there_is_one(sent, kind):
    assert "failure rate" not in sent(kind, notification(alert_line(rate=None)))


@pytest.mark.parametrize(
    ("message", "title"),
    [
        (many(3), "[FIRING 3] failing-services"),
        (many(2, state="resolved"), "[RESOLVED 2] failing-services"),
    ],
)
@pytest.mark.parametrize("kind", ["smn", "feishu", "email-text"])
def test_the_title_counts_firing_and_resolved(sent, kind, message, title):
    assert sent(kind, message).startswith(title)


@pytest.mark.parametrize("kind", list(DANGEROUS))
def test_hostile_names_mention_link_and_style_nothing(sent, kind):
    hostile = AlertLine(
        state="firing",
        labels={
            "service_id": "s-1",
            "service_name": HOSTILE,
            "status": "failed",
            "source": "sim",
            "owner": "@here <@U024BE7LH>",
        },
        annotations={"failure_rate": "**50%**"},
        starts_at=alert_line().starts_at,
        ends_at=None,
        url="http://dashboard.test/services/s-1/",
        fingerprint="00",
    )
    text = sent(kind, notification(hostile))
    for raw in DANGEROUS[kind]:
        assert raw not in text, f"{raw!r} reached {kind}"


@pytest.mark.parametrize("kind", ["wecom", "dingtalk", "feishu", "slack", "smn"])
def test_a_newline_in_data_cannot_start_a_line_of_its_own(sent, kind):
    name = "svc\n### Fake heading\n- @all\r\n[x](http://evil)"
    plain = sent(kind, notification(alert_line("svc-plain")))
    text = sent(kind, notification(alert_line(name)))
    assert text.count("\n") == plain.count("\n")
    assert "\n### Fake" not in text and "\n- @all" not in text


@pytest.mark.parametrize("kind", ["wecom", "feishu", "email-text"])
def test_a_very_long_value_is_cut(sent, kind):
    text = sent(kind, notification(alert_line("x" * 10_000)))
    assert "x" * 119 + "…" in text and "x" * 121 not in text


def test_wecom_content_fits_4096_bytes_without_splitting_a_character(sent):
    message = notification(
        *(alert_line("服务" * 60 + f"{n:02d}", service_id=f"s-{n:04d}") for n in range(25))
    )
    text = sent("wecom", message)
    assert len(text.encode()) <= 4096
    listed = sum(f"{n:02d} ·" in text for n in range(25))
    assert 0 < listed < 10
    assert f"{25 - listed} more" in text


@pytest.mark.parametrize("kind", ["dingtalk", "slack", "email-html"])
def test_only_http_links_are_made(sent, kind):
    line = alert_line()
    evil = AlertLine(**{**line.__dict__, "url": "javascript:alert(document.cookie)"})
    text = sent(kind, notification(evil))
    assert "javascript" not in text


def test_a_link_cannot_close_its_markdown(sent):
    line = alert_line()
    odd = AlertLine(**{**line.__dict__, "url": "http://dashboard.test/services/a)b [c]/"})
    text = sent("dingtalk", notification(odd))
    assert "(http://dashboard.test/services/a%29b%5Bc%5D/)" in text


@pytest.mark.parametrize("kind", ["dingtalk", "feishu", "email-text"])
def test_a_source_alert_names_the_source_and_says_why(sent, kind):
    stale = AlertLine(
        state="firing",
        labels={"alertname": "stale", "source": "prod-cn4"},
        annotations={"summary": "prod-cn4: no successful poll for over two intervals"},
        starts_at=alert_line().starts_at,
        ends_at=None,
        url="http://dashboard.test/polls/?source=prod-cn4",
        fingerprint="01",
    )
    text = sent(kind, notification(stale, rule="stale"))
    assert "prod-cn4" in text and "no successful poll" in text
    assert "http://dashboard.test/polls/?source=prod-cn4" in text
