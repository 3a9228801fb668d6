"""A channel's configuration is checked before anything is sent: each error names its field and
never repeats a secret."""

from __future__ import annotations

import pytest

from dashboard.alerts.channels import KINDS, ChannelConfig, ChannelConfigError

KEY = "whsec_" + "a2V5LWZvci10ZXN0cw=="  # base64 of "key-for-tests"
SMN = {
    "url": "https://smn.cn-north-4.myhuaweicloud.com",
    "project_id": "0123456789abcdef0123456789abcdef",
    "topic_urn": "urn:smn:cn-north-4:0123456789abcdef0123456789abcdef:ops",
    "ak": "EXAMPLEAK0000000000",
    "sk": "secret-sk-value",
}
VALID = [
    {"kind": "webhook", "url": "https://hooks.example.com/alerts"},
    {"kind": "webhook", "url": "http://127.0.0.1:9000/", "secret": KEY},
    {"kind": "alertmanager", "url": "http://alertmanager:9093"},
    {"kind": "slack", "url": "https://hooks.slack.com/services/T0/B0/xyz"},
    {"kind": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc"},
    {"kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=t"},
    {
        "kind": "dingtalk",
        "url": "https://oapi.dingtalk.com/robot/send?access_token=t",
        "secret": "SECx",
    },
    {"kind": "feishu", "url": "https://open.feishu.cn/open-apis/bot/v2/hook/h", "secret": "s"},
    {"kind": "smn", **SMN},
    {"kind": "email", "to": ("ops@example.com", "oncall@example.com")},
]


@pytest.mark.parametrize("fields", VALID, ids=lambda f: f["kind"])
def test_a_working_channel_passes(fields):
    ChannelConfig(name="ops", **fields).validate()


def test_every_kind_has_a_valid_example():
    assert {fields["kind"] for fields in VALID} == set(KINDS)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"kind": "pager", "url": "https://x.test"}, "kind", "must be one of webhook"),
        ({"kind": "webhook", "url": ""}, "url", "http(s)"),
        ({"kind": "webhook", "url": "ftp://x.test/a"}, "url", "http(s)"),
        ({"kind": "webhook", "url": "https:///nohost"}, "url", "http(s)"),
        ({"kind": "webhook", "url": "https://x.test/a b"}, "url", "spaces"),
        (
            {"kind": "webhook", "url": "https://x.test", "secret": "plain-secret"},
            "secret",
            "whsec_",
        ),
        (
            {"kind": "webhook", "url": "https://x.test", "secret": "whsec_not*base64"},
            "secret",
            "base64",
        ),
        ({"kind": "slack", "url": "https://x.test", "secret": "s"}, "secret", "not used by slack"),
        ({"kind": "wecom", "url": "https://x.test/cgi-bin/webhook/send"}, "url", "key"),
        ({"kind": "dingtalk", "url": "https://x.test/robot/send"}, "url", "access_token"),
        ({"kind": "smn", **{**SMN, "project_id": ""}}, "project_id", "required"),
        ({"kind": "smn", **{**SMN, "topic_urn": "ops-topic"}}, "topic_urn", "urn:smn:"),
        ({"kind": "smn", **{**SMN, "ak": ""}}, "ak", "required"),
        ({"kind": "smn", **{**SMN, "ak": "AK, Signature=x"}}, "ak", "required"),
        ({"kind": "smn", **{**SMN, "sk": ""}}, "sk", "required"),
        ({"kind": "smn", **{**SMN, "url": ""}}, "url", "http(s)"),
        ({"kind": "email"}, "to", "at least one"),
        ({"kind": "email", "to": ("ops@example.com", "not an address")}, "to", "invalid"),
    ],
)
def test_a_broken_channel_names_the_field(fields, field, words):
    with pytest.raises(ChannelConfigError) as caught:
        ChannelConfig(name="ops-ding", **fields).validate()
    assert caught.value.field == field
    assert str(caught.value).startswith(f"channel 'ops-ding': {field} ")
    assert words in str(caught.value)


def test_a_channel_needs_a_name():
    with pytest.raises(ChannelConfigError, match="name is required"):
        ChannelConfig(name=" ", kind="webhook", url="https://x.test").validate()


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "webhook", "url": "https://x.test", "secret": "whsec_top*secret"},
        {"kind": "wecom", "url": "https://x.test/send?token=top-secret-key"},
        {"kind": "smn", **{**SMN, "sk": "top secret"}},
    ],
)
def test_an_error_never_repeats_a_secret(fields):
    with pytest.raises(ChannelConfigError) as caught:
        ChannelConfig(name="ops", **fields).validate()
    assert "top" not in str(caught.value)
