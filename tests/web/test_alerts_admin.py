from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from dashboard.alerts.outbox import message_of
from dashboard.models import AlertChannel, AlertRule, Notification, Silence
from dashboard.web.accounts import create_user

TOKEN = "dingtalk-access-token-5e1c9a7f3b"
SECRET = "SEC-dingtalk-signing-9f2b7c4e1a6d"
SK = "SECRET-SK-admin-7c3e9a1f5b2d4e6a"
SECRETS = (TOKEN, SECRET, SK)
DINGTALK_URL = f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}"
CHANNELS = "/admin/dashboard/alertchannel/"


@pytest.fixture
def admin_client(db) -> Client:
    client = Client()
    client.force_login(create_user("boss", "a-password-for-tests-only", "admin"))
    return client


@pytest.fixture
def channel(db) -> AlertChannel:
    return AlertChannel.objects.create(
        name="ops-dingtalk", kind="dingtalk", url=DINGTALK_URL, secret=SECRET
    )


@pytest.fixture
def smn(db) -> AlertChannel:
    return AlertChannel.objects.create(
        name="ops-smn",
        kind="smn",
        project_id="p1",
        topic_urn="urn:smn:cn-north-4:p1:ops",
        ak="AKEXAMPLE",
        sk=SK,
    )


def channel_form(**changes: str) -> dict[str, str]:
    form = {
        "name": "ops-dingtalk",
        "kind": "dingtalk",
        "enabled": "on",
        "url": "",
        "secret": "",
        "to": "[]",
        "project_id": "",
        "topic_urn": "",
        "ak": "",
        "sk": "",
    }
    form.update(changes)
    return form


def assert_no_secret(body: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in body, (where, secret)


def test_it_adds_a_channel_and_never_shows_its_secrets_again(admin_client, db):
    form = channel_form(url=DINGTALK_URL, secret=SECRET)
    assert admin_client.post(f"{CHANNELS}add/", form).status_code == 302
    saved = AlertChannel.objects.get()
    assert (saved.url, saved.secret) == (DINGTALK_URL, SECRET)
    listing = admin_client.get(CHANNELS).content.decode()
    assert "https://oapi.dingtalk.com/…" in listing
    change = admin_client.get(f"{CHANNELS}{saved.pk}/change/").content.decode()
    assert "Stored (https://oapi.dingtalk.com/…), hidden. Leave blank to keep it." in change
    assert_no_secret(listing + change, "channel pages")


def test_blank_secret_fields_keep_what_is_stored(admin_client, channel):
    form = channel_form(enabled="")
    assert admin_client.post(f"{CHANNELS}{channel.pk}/change/", form).status_code == 302
    channel.refresh_from_db()
    assert (channel.url, channel.secret, channel.enabled) == (DINGTALK_URL, SECRET, False)


def test_a_secret_is_erased_only_when_asked(admin_client, channel):
    form = channel_form(clear="secret")
    assert admin_client.post(f"{CHANNELS}{channel.pk}/change/", form).status_code == 302
    channel.refresh_from_db()
    assert (channel.url, channel.secret) == (DINGTALK_URL, "")


def test_a_new_secret_replaces_the_stored_one(admin_client, channel):
    new_url = "https://oapi.dingtalk.com/robot/send?access_token=another-token"
    form = channel_form(url=new_url)
    assert admin_client.post(f"{CHANNELS}{channel.pk}/change/", form).status_code == 302
    assert AlertChannel.objects.get(pk=channel.pk).url == new_url


def test_it_refuses_a_channel_that_cannot_work_without_echoing_what_was_typed(admin_client, db):
    typed = f"https://oapi.dingtalk.com/robot/send?token={TOKEN}"  # not access_token
    response = admin_client.post(f"{CHANNELS}add/", channel_form(url=typed, secret=SECRET))
    body = response.content.decode()
    assert response.status_code == 200
    assert "must carry the robot&#x27;s access_token" in body
    assert_no_secret(body, "the refused form")
    assert not AlertChannel.objects.exists()


def test_it_keeps_the_email_list_a_list(admin_client, db):
    form = channel_form(name="mail", kind="email", to='"ops@example.com"')
    response = admin_client.post(f"{CHANNELS}add/", form)
    assert response.status_code == 200
    assert "A list of addresses" in response.content.decode()
    form["to"] = '["ops@example.com"]'
    assert admin_client.post(f"{CHANNELS}add/", form).status_code == 302
    assert AlertChannel.objects.get().to == ["ops@example.com"]


def test_the_test_message_action_queues_a_message_for_the_dispatcher(admin_client, channel, smn):
    response = admin_client.post(
        CHANNELS, {"action": "send_test_message", "_selected_action": [str(channel.pk)]}
    )
    assert response.status_code == 302
    message = Notification.objects.get()
    assert (message.channel, message.rule, message.state) == (channel, "test", "pending")
    assert message.attempts == 0 and message.next_attempt_at <= timezone.now()
    [line] = message_of(message).alerts  # the dispatcher can read it
    assert line.state == "firing" and line.labels["alertname"] == "test"
    assert line.labels["service_name"] == "test message from the dashboard"
    page = admin_client.get(CHANNELS).content.decode()
    assert "Test message to ops-dingtalk queued; see /alerts/ for the delivery." in page


def test_the_channels_page_has_a_test_button_outside_its_form(admin_client, channel):
    page = admin_client.get(f"{CHANNELS}{channel.pk}/change/").content.decode()
    action = f'action="{CHANNELS}{channel.pk}/test/"'
    assert action in page
    # Outside the change form: Enter in a field still saves rather than sending a test.
    assert page.index(action) < page.index('id="alertchannel_form"')
    assert admin_client.get(f"{CHANNELS}{channel.pk}/test/").status_code == 405
    assert not Notification.objects.exists()
    response = admin_client.post(f"{CHANNELS}{channel.pk}/test/")
    assert response.status_code == 302 and response["Location"].endswith(f"/{channel.pk}/change/")
    assert Notification.objects.get().channel == channel
    assert "Test message to ops-dingtalk queued" in admin_client.get(response["Location"]).text


def test_a_staff_user_without_the_test_permission_gets_no_test_action(db, channel):
    user = get_user_model().objects.create_user("clerk", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_alertchannel"))
    client = Client()
    client.force_login(user)
    listing = client.get(CHANNELS).content.decode()
    assert "send_test_message" not in listing
    client.post(CHANNELS, {"action": "send_test_message", "_selected_action": [str(channel.pk)]})
    assert client.post(f"{CHANNELS}{channel.pk}/test/").status_code == 403
    assert not Notification.objects.exists()
    # A view-only page shows fields as text: the secrets' never.
    page = client.get(f"{CHANNELS}{channel.pk}/change/").content.decode()
    assert "/test/" not in page
    assert "url, secret" in page  # which secrets are stored, not what they are
    assert_no_secret(page, "the view-only page")


def test_no_admin_page_ever_shows_a_channel_secret(admin_client, channel, smn):
    rule = AlertRule.objects.create(name="failed", condition="statuses", statuses=["failed"])
    rule.channels.set([channel, smn])
    admin_client.post(CHANNELS, {"action": "send_test_message", "_selected_action": [channel.pk]})
    message = Notification.objects.get()
    Notification.objects.filter(pk=message.pk).update(last_answer="echo: [hidden]")
    pages = [
        CHANNELS,
        f"{CHANNELS}add/",
        *(f"{CHANNELS}{c.pk}/{p}/" for c in (channel, smn) for p in ("change", "history")),
        f"{CHANNELS}{channel.pk}/delete/",
        "/admin/dashboard/alertrule/",
        f"/admin/dashboard/alertrule/{rule.pk}/change/",
        "/admin/dashboard/notification/",
        f"/admin/dashboard/notification/{message.pk}/change/",
        "/admin/",
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert_no_secret(response.content.decode(), url)


def rule_form(**changes: str) -> dict[str, str]:
    form = {
        "name": "slow",
        "condition": "statuses",
        "statuses": '["failed"]',
        "window": "",
        "min_calls": "20",
        "detector": "",
        "sources": "[]",
        "owners": "[]",
        "types": "[]",
        "name_glob": "",
        "repeat_seconds": "3600",
        "enabled": "on",
    }
    form.update(changes)
    return form


def test_it_adds_a_rule_with_its_channels(admin_client, channel):
    form = rule_form(channels=[str(channel.pk)])
    assert admin_client.post("/admin/dashboard/alertrule/add/", form).status_code == 302
    rule = AlertRule.objects.get()
    assert list(rule.channels.all()) == [channel]
    listing = admin_client.get("/admin/dashboard/alertrule/").content.decode()
    assert "ops-dingtalk" in listing and "Status is one of" in listing


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"statuses": "[]"}, "Name at least one status"),
        ({"statuses": '"failed"'}, "A list of names"),
        ({"condition": "failure_rate", "failure_rate": "0.2", "window": "2d"}, "One of 15m, 1h"),
        ({"condition": "failure_rate", "failure_rate": "3", "window": "15m"}, "A number from 0"),
        ({"condition": "detector", "detector": "nope"}, "One of stuck, idle"),
    ],
)
def test_it_checks_a_rule_as_the_provisioning_file_does(admin_client, db, changes, message):
    response = admin_client.post("/admin/dashboard/alertrule/add/", rule_form(**changes))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not AlertRule.objects.exists()


def test_a_silence_made_in_the_admin_names_its_author_and_a_matcher(admin_client, db):
    start = timezone.now()
    end = start + timedelta(hours=1)
    form = {
        "service_id": "",
        "source": "",
        "owner": "",
        "rule": "",
        "starts_at_0": start.strftime("%Y-%m-%d"),
        "starts_at_1": start.strftime("%H:%M:%S"),
        "ends_at_0": end.strftime("%Y-%m-%d"),
        "ends_at_1": end.strftime("%H:%M:%S"),
        "comment": "upgrade",
    }
    response = admin_client.post("/admin/dashboard/silence/add/", form)
    assert "Name what to silence" in response.content.decode()
    form["owner"] = "team-a"
    assert admin_client.post("/admin/dashboard/silence/add/", form).status_code == 302
    assert Silence.objects.get().author == "boss"


def test_deliveries_are_read_only_in_the_admin(admin_client, channel):
    message = Notification.objects.create(
        channel=channel,
        rule="failed",
        message_id="msg_1",
        payload={"rule": "failed", "alerts": []},
        created_at=timezone.now(),
        next_attempt_at=timezone.now(),
    )
    assert admin_client.get("/admin/dashboard/notification/add/").status_code == 403
    page = admin_client.get(f"/admin/dashboard/notification/{message.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    listing = admin_client.get("/admin/dashboard/notification/").content.decode()
    assert "ops-dingtalk" in listing and "pending" in listing
