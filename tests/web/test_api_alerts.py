from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from dashboard.alerts.conditions import fingerprint
from dashboard.models import Alert, AlertRule, Silence

STARTED = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


@pytest.fixture
def rule(db) -> AlertRule:
    return AlertRule.objects.create(
        name="failed-services", condition="statuses", statuses=["failed"]
    )


def fire(service, rule: AlertRule, **fields) -> Alert:
    labels = {
        "alertname": rule.name,
        "service_id": service.service_id,
        "service_name": service.service_name,
        "status": service.status,
        "source": service.source.name,
        "owner": service.owner,
    }
    return Alert.objects.create(
        rule=rule,
        source=service.source,
        service=service,
        fingerprint=fingerprint(rule.name, service.source.name, service.service_id),
        labels=labels,
        annotations={"previous_status": "running"},
        **{"started_at": STARTED, **fields},
    )


def test_it_lists_firing_and_resolved_alerts(client, make_service, rule):
    alert = fire(make_service("alpha", "failed"), rule)
    Alert.objects.filter(pk=alert.pk).update(
        acknowledged_at=STARTED + timedelta(minutes=1), acknowledged_by="ops"
    )
    done = fire(make_service("beta"), rule, resolved_at=STARTED + timedelta(hours=1))
    response = client.get("/api/alerts")
    assert response.status_code == 200
    data = response.json()
    assert data["firing"] == [
        {
            "id": alert.pk,
            "rule": "failed-services",
            "labels": alert.labels,
            "annotations": {"previous_status": "running"},
            "started_at": "2026-01-02T03:04:05.678000Z",
            "resolved_at": None,
            "silenced": False,
            "acknowledged_at": "2026-01-02T03:05:05.678000Z",
            "acknowledged_by": "ops",
            "fingerprint": alert.fingerprint,
        }
    ]
    [resolved] = data["resolved"]
    assert (resolved["id"], resolved["resolved_at"]) == (done.pk, "2026-01-02T04:04:05.678000Z")
    assert resolved["acknowledged_at"] is None and resolved["acknowledged_by"] is None


def test_it_says_an_alert_under_an_active_silence_is_silenced(client, make_service, rule):
    flagged = fire(make_service("alpha", "failed"), rule, silenced=True)
    fresh = fire(make_service("beta", "failed"), rule)
    now = timezone.now()
    Silence.objects.create(
        service_id=fresh.labels["service_id"],
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
        comment="upgrade",
        author="amy",
    )
    silenced = {item["id"]: item["silenced"] for item in client.get("/api/alerts").json()["firing"]}
    assert silenced == {flagged.pk: True, fresh.pk: True}


def test_it_answers_an_empty_list_when_nothing_fires(client, db):
    assert client.get("/api/alerts").json() == {"firing": [], "resolved": []}


def test_it_refuses_other_methods(client, db):
    assert client.post("/api/alerts").status_code == 405
