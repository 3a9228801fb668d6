from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.alerts.conditions import fingerprint
from dashboard.models import Alert, AlertChannel, AlertRule, Notification, Silence, Source
from dashboard.web.accounts import create_user

SECRET = "whsec_c2VjcmV0LWtleS1mb3ItdGhlLWFsZXJ0cy1wYWdl"
URL_KEY = "dingtalk-token-8c1f4e2a9b7d"
SK = "SECRET-SK-3f9a1c7e5b2d48a6"


def signed_in(role: str) -> Client:
    client = Client()
    client.force_login(create_user(f"{role}-user", "a-password-for-tests-only", role))
    return client


def ids(response, kind: str) -> list[int]:
    return [int(n) for n in re.findall(rf'data-{kind}-id="(\d+)"', response.content.decode())]


@pytest.fixture
def rule(db) -> AlertRule:
    return AlertRule.objects.create(
        name="failed-services", condition="statuses", statuses=["failed"]
    )


@pytest.fixture
def channel(db) -> AlertChannel:
    return AlertChannel.objects.create(
        name="ops-dingtalk",
        kind="dingtalk",
        url=f"https://oapi.dingtalk.com/robot/send?access_token={URL_KEY}",
        secret=SECRET,
        ak="AK-not-secret",
        sk=SK,
    )


def fire(service, rule: AlertRule, *, minutes_ago: int = 5, **fields) -> Alert:
    """An alert as the engine opens one for a service."""
    labels = {
        "alertname": rule.name,
        "service_id": service.service_id,
        "service_name": service.service_name,
        "status": service.status,
        "source": service.source.name,
        "owner": service.owner,
        "infer_type": service.infer_type,
    }
    started = timezone.now() - timedelta(minutes=minutes_ago)
    values = {"notified_at": started, **fields}
    return Alert.objects.create(
        rule=rule,
        source=service.source,
        service=service,
        fingerprint=fingerprint(rule.name, service.source.name, service.service_id),
        labels=labels,
        annotations={"failure_rate": "12.00%"},
        started_at=started,
        **values,
    )


def deliver(channel: AlertChannel, **fields) -> Notification:
    now = timezone.now()
    return Notification.objects.create(
        channel=channel,
        rule="failed-services",
        message_id=f"msg_{Notification.objects.count()}",
        **{
            "payload": {"rule": "failed-services", "alerts": []},
            "created_at": now,
            "next_attempt_at": now,
            **fields,
        },
    )


def silence(**fields) -> Silence:
    now = timezone.now()
    return Silence.objects.create(
        **{
            "starts_at": now - timedelta(minutes=1),
            "ends_at": now + timedelta(hours=1),
            "comment": "upgrade",
            "author": "amy",
            **fields,
        }
    )


def test_it_lists_what_fires_newest_first_with_links_to_the_services(client, make_service, rule):
    older = fire(make_service("alpha", "failed"), rule, minutes_ago=30)
    newer = fire(make_service("beta/gamma", "failed"), rule, minutes_ago=2)
    response = client.get("/alerts/")
    body = response.content.decode()
    assert response.status_code == 200
    assert ids(response, "alert") == [newer.pk, older.pk]
    quoted = newer.labels["service_id"]
    assert f'href="/services/{quoted}/?source=fixture"' in body
    assert "failed-services" in body and "failure_rate: 12.00%" in body
    assert "30 min ago" in body
    assert older.started_at.strftime("%Y-%m-%d %H:%M:%S") in body
    assert "HX-Request" in response["Vary"]


def test_it_quotes_service_ids_in_links(client, make_service, rule):
    alert = fire(make_service("odd"), rule)
    Alert.objects.filter(pk=alert.pk).update(labels={**alert.labels, "service_id": "a/b c"})
    assert 'href="/services/a%2Fb%20c/?source=fixture"' in client.get("/alerts/").content.decode()


def test_a_stale_source_alert_links_to_its_polls(client, db):
    source = Source.objects.create(name="cn north", endpoint="http://127.0.0.1:9", project_id="p")
    stale = AlertRule.objects.create(name="stale", condition="stale")
    Alert.objects.create(
        rule=stale,
        source=source,
        fingerprint=fingerprint("stale", source.name),
        labels={"alertname": "stale", "source": source.name},
        annotations={"error": "could not reach host"},
        started_at=timezone.now(),
    )
    body = client.get("/alerts/").content.decode()
    assert 'href="/polls/?source=cn+north"' in body
    assert "error: could not reach host" in body


def test_it_lists_recently_resolved_alerts_apart_from_the_firing_ones(client, make_service, rule):
    firing = fire(make_service("alpha", "failed"), rule)
    done = fire(make_service("beta"), rule, resolved_at=timezone.now() - timedelta(minutes=1))
    response = client.get("/alerts/")
    assert ids(response, "alert") == [firing.pk]
    assert ids(response, "resolved") == [done.pk]


def test_it_lists_deliveries_with_attempts_and_the_receivers_answer(client, db, channel):
    failed = deliver(
        channel,
        state="failed",
        attempts=12,
        last_status_code=500,
        last_answer='{"errcode": 310000, "errmsg": "sign not match"}',
        last_error="HTTP 500",
    )
    pending = deliver(channel, attempts=1, next_attempt_at=timezone.now() + timedelta(minutes=2))
    response = client.get("/alerts/")
    body = response.content.decode()
    assert ids(response, "delivery") == [pending.pk, failed.pk]
    assert "ops-dingtalk" in body and "DingTalk robot" in body
    assert "&quot;errmsg&quot;: &quot;sign not match&quot;" in body
    assert ">500<" in body and ">12<" in body and "in 1 min" in body


def test_it_serves_the_partial_to_htmx_and_the_full_page_to_history_restores(client, db):
    partial = client.get("/alerts/", headers={"HX-Request": "true"}).content.decode()
    assert '<div id="alerts"' in partial
    assert "<html" not in partial and "data-auto-refresh" in partial
    restore = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    full = client.get("/alerts/", headers=restore).content.decode()
    assert "<html" in full and '<div id="alerts"' in full


def test_an_operator_acknowledges_an_alert_and_nothing_else_changes(client, make_service, rule):
    alert = fire(make_service("alpha", "failed"), rule)
    other = fire(make_service("beta", "failed"), rule)
    response = client.post(f"/alerts/{alert.pk}/ack")
    assert (response.status_code, response["Location"]) == (303, "/alerts/")
    alert.refresh_from_db()
    assert alert.acknowledged_by == "ops" and alert.acknowledged_at is not None
    assert (alert.resolved_at, alert.silenced, alert.notified_at) == (None, False, alert.started_at)
    assert Alert.objects.get(pk=other.pk).acknowledged_at is None
    body = client.get("/alerts/").content.decode()
    assert "acknowledged" in body and "by ops" in body
    assert f'action="/alerts/{alert.pk}/ack"' not in body
    assert f'action="/alerts/{other.pk}/ack"' in body


def test_the_first_acknowledgement_stands(client, make_service, rule):
    alert = fire(make_service("alpha", "failed"), rule, acknowledged_by="amy")
    Alert.objects.filter(pk=alert.pk).update(acknowledged_at=alert.started_at)
    client.post(f"/alerts/{alert.pk}/ack")
    assert Alert.objects.get(pk=alert.pk).acknowledged_by == "amy"


def test_an_htmx_acknowledge_gets_the_partial_back(client, make_service, rule):
    alert = fire(make_service("alpha", "failed"), rule)
    response = client.post(f"/alerts/{alert.pk}/ack", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200
    assert '<div id="alerts"' in body and "<html" not in body and "by ops" in body


def test_acknowledging_an_unknown_alert_is_a_404(client, db):
    assert client.post("/alerts/999/ack").status_code == 404
    assert client.get("/alerts/1/ack").status_code == 405


def test_a_viewer_sees_everything_but_no_buttons(db, make_service, rule):
    alert = fire(make_service("alpha", "failed"), rule)
    active = silence(service_id=alert.labels["service_id"])
    viewer = signed_in("viewer")
    body = viewer.get("/alerts/").content.decode()
    assert "alpha" in body and "upgrade" in body
    assert "Acknowledge" not in body and "Expire" not in body
    assert 'action="/alerts/silences"' not in body
    assert viewer.post(f"/alerts/{alert.pk}/ack").status_code == 403
    assert viewer.post(f"/alerts/silences/{active.pk}/expire").status_code == 403
    form = {"service_id": "x", "minutes": "60", "comment": "c"}
    assert viewer.post("/alerts/silences", form).status_code == 403
    assert Alert.objects.get(pk=alert.pk).acknowledged_at is None
    assert Silence.objects.get(pk=active.pk).ends_at == active.ends_at
    assert Silence.objects.count() == 1


def test_an_operator_silences_a_service_and_its_alert_shows_silenced(client, make_service, rule):
    alert = fire(make_service("alpha", "failed"), rule)
    form = {"service_id": alert.labels["service_id"], "minutes": "30", "comment": " upgrade "}
    response = client.post("/alerts/silences", form)
    assert (response.status_code, response["Location"]) == (303, "/alerts/")
    made = Silence.objects.get()
    assert (made.author, made.comment, made.source) == ("ops", "upgrade", "")
    assert timedelta(minutes=29) < made.ends_at - timezone.now() <= timedelta(minutes=30)
    body = client.get("/alerts/").content.decode()
    assert f'data-silence-id="{made.pk}"' in body
    assert f"service_id={alert.labels['service_id']}" in body
    assert ">silenced<" in body and "by ops until" in body


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"minutes": "60", "comment": "everything"}, "Name what to silence"),
        ({"source": "sim", "minutes": "60", "comment": "  "}, "This field is required"),
        ({"source": "sim", "minutes": "0", "comment": "c"}, "greater than or equal to 1"),
        ({"source": "sim", "minutes": "999999", "comment": "c"}, "less than or equal to"),
        ({"source": "sim", "minutes": "soon", "comment": "c"}, "Enter a whole number"),
        ({"source": "s" * 65, "minutes": "60", "comment": "c"}, "at most 64 characters"),
        ({"owner": "a\x00b", "minutes": "60", "comment": "c"}, "Null characters"),
    ],
)
def test_it_refuses_a_silence_it_cannot_keep(client, db, form, message):
    response = client.post("/alerts/silences", form)
    body = response.content.decode()
    assert response.status_code == 400
    assert 'role="alert"' in body and message in body
    assert '<details class="new-silence" open>' in body
    assert not Silence.objects.exists()


def test_an_operator_expires_a_silence(client, db):
    active = silence(source="sim")
    upcoming = silence(owner="bob", starts_at=timezone.now() + timedelta(hours=1))
    ended = silence(rule="x", ends_at=timezone.now() - timedelta(minutes=1))
    response = client.get("/alerts/")
    assert ids(response, "silence") == [active.pk, upcoming.pk]
    assert "upcoming" in response.content.decode()
    assert client.post(f"/alerts/silences/{active.pk}/expire").status_code == 303
    assert client.post(f"/alerts/silences/{upcoming.pk}/expire").status_code == 303
    active.refresh_from_db()
    upcoming.refresh_from_db()
    assert active.ends_at <= timezone.now() and upcoming.starts_at == upcoming.ends_at
    before = ended.ends_at
    client.post(f"/alerts/silences/{ended.pk}/expire")
    assert Silence.objects.get(pk=ended.pk).ends_at == before  # an ended one keeps its end
    assert ids(client.get("/alerts/"), "silence") == []
    assert client.post("/alerts/silences/999/expire").status_code == 404


def test_it_escapes_hostile_names_and_answers(client, make_service, rule, channel):
    fire(make_service("<script>alert(1)</script>", "failed"), rule)
    deliver(channel, last_answer="<img src=x onerror=alert(2)>")
    silence(owner="o", comment="<b>bold</b>")
    body = client.get("/alerts/").content.decode()
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)" in body
    assert "<img src=x" not in body and "&lt;img src=x onerror=alert(2)&gt;" in body
    assert "<b>bold" not in body


def test_no_channel_secret_ever_reaches_the_page_or_the_api(client, make_service, rule, channel):
    rule.channels.add(channel)
    fire(make_service("alpha", "failed"), rule)
    deliver(channel, state="sent", last_answer="echo: access_token=[hidden]", last_status_code=200)
    for url in ("/alerts/", "/api/alerts"):
        body = client.get(url).content.decode()
        for secret in (SECRET, URL_KEY, SK):
            assert secret not in body, (url, secret)


def test_the_header_counts_alerts_firing_and_not_silenced(client, make_service, rule):
    assert 'class="count"' not in client.get("/polls/").content.decode()
    for n in range(3):
        fire(make_service(f"s{n}", "failed"), rule)
    fire(make_service("quiet", "failed"), rule, silenced=True)
    fire(make_service("over"), rule, resolved_at=timezone.now())
    body = client.get("/polls/").content.decode()
    assert '<a href="/polls/" aria-current="page">Polls</a>' in body
    assert '<span class="count">3<span class="visually-hidden"> firing</span></span>' in body


def test_a_partial_does_not_count_the_alerts(client, make_service, rule):
    fire(make_service("alpha", "failed"), rule)
    with CaptureQueriesContext(connection) as queries:
        client.get("/polls/", headers={"HX-Request": "true"})
    assert not [q for q in queries.captured_queries if "dashboard_alert" in q["sql"]]


def test_it_keeps_a_constant_number_of_queries(
    client, make_service, rule, channel, django_assert_max_num_queries
):
    other = AlertRule.objects.create(name="other", condition="statuses", statuses=["failed"])

    def add(n: int) -> None:
        for i in range(n):
            service = make_service(f"svc-{Alert.objects.count()}-{i}", "failed")
            fire(service, rule)
            fire(service, other, resolved_at=timezone.now())
            deliver(channel)
            silence(service_id=service.service_id)

    add(2)
    with django_assert_max_num_queries(20) as few:
        assert client.get("/alerts/").status_code == 200
    add(40)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/alerts/")
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/api/alerts")


def test_anonymous_visitors_are_sent_to_log_in(anonymous_client, db):
    response = anonymous_client.get("/alerts/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")
    # The JSON API says so in JSON instead (see test_api_tokens).
    assert anonymous_client.get("/api/alerts").status_code == 401
    assert anonymous_client.post("/alerts/silences", {}).status_code == 302
