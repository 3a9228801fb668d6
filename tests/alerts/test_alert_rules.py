"""Rules evaluated over the stored fleet: what fires, resolves, repeats, and what is queued."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import work_out_windows
from django.utils import timezone

from dashboard.alerts.engine import evaluate
from dashboard.models import (
    Alert,
    AlertChannel,
    AlertRule,
    Notification,
    ServiceSample,
    Silence,
    Source,
    StatusChange,
)


@pytest.fixture
def channel(db) -> AlertChannel:
    return AlertChannel.objects.create(name="hook", kind="webhook", url="http://127.0.0.1:9/")


def rule(channel: AlertChannel, name: str = "failing", **fields) -> AlertRule:
    fields.setdefault("condition", "statuses")
    fields.setdefault("statuses", ["failed"])
    made = AlertRule.objects.create(name=name, **fields)
    made.channels.set([channel])
    return made


def fixture_source() -> Source:
    return Source.objects.get(name="fixture")


def messages() -> list[dict]:
    return [row.payload for row in Notification.objects.order_by("id")]


def states(payload: dict) -> list[tuple[str, str]]:
    return [(a["state"], a["labels"]["service_name"]) for a in payload["alerts"]]


def test_a_first_poll_with_forty_failures_sends_one_grouped_message(channel, make_service):
    for n in range(40):
        make_service(f"svc-{n:02d}", "failed")
    make_service("fine", "running")
    rule(channel)
    outcome = evaluate(fixture_source())
    assert (outcome.fired, outcome.messages) == (40, 1)
    [payload] = messages()
    assert payload["rule"] == "failing"
    assert sorted(name for _, name in states(payload)) == [f"svc-{n:02d}" for n in range(40)]
    labels = payload["alerts"][0]["labels"]
    assert set(labels) >= {"alertname", "service_id", "service_name", "status", "source", "owner"}
    assert Alert.objects.filter(resolved_at=None).count() == 40


def test_an_unchanged_state_sends_nothing_more(channel, make_service):
    make_service("bad", "failed")
    rule(channel)
    evaluate(fixture_source())
    outcome = evaluate(fixture_source())
    assert (outcome.fired, outcome.resolved, outcome.messages) == (0, 0, 0)
    assert Notification.objects.count() == 1


def test_it_resolves_once_when_the_condition_stops_holding(channel, make_service):
    bad = make_service("bad", "failed")
    gone = make_service("gone", "failed")
    rule(channel)
    evaluate(fixture_source())
    bad.status = "running"
    bad.save()
    gone.gone_at = timezone.now()
    gone.save()
    outcome = evaluate(fixture_source())
    assert outcome.resolved == 2
    assert sorted(states(messages()[-1])) == [("resolved", "bad"), ("resolved", "gone")]
    assert messages()[-1]["alerts"][0]["ends_at"] is not None
    evaluate(fixture_source())
    assert Notification.objects.count() == 2
    assert not Alert.objects.filter(resolved_at=None).exists()


def test_it_fires_again_after_resolving(channel, make_service):
    bad = make_service("bad", "failed")
    rule(channel)
    evaluate(fixture_source())
    bad.status = "running"
    bad.save()
    evaluate(fixture_source())
    bad.status = "failed"
    bad.save()
    assert evaluate(fixture_source()).fired == 1
    assert Alert.objects.filter(service=bad).count() == 2


def test_it_repeats_while_firing_and_acknowledging_stops_it(channel, make_service):
    make_service("bad", "failed")
    rule(channel, repeat_seconds=3600)
    start = timezone.now()
    evaluate(fixture_source(), start)
    assert evaluate(fixture_source(), start + timedelta(minutes=59)).repeated == 0
    assert evaluate(fixture_source(), start + timedelta(minutes=61)).repeated == 1
    Alert.objects.update(acknowledged_at=start, acknowledged_by="ops")
    assert evaluate(fixture_source(), start + timedelta(hours=5)).repeated == 0
    assert Notification.objects.count() == 2


def test_a_repeat_of_zero_never_repeats(channel, make_service):
    make_service("bad", "failed")
    rule(channel, repeat_seconds=0)
    start = timezone.now()
    evaluate(fixture_source(), start)
    assert evaluate(fixture_source(), start + timedelta(days=3)).repeated == 0


def test_a_silenced_alert_is_recorded_as_silenced_and_sends_nothing(channel, make_service):
    bad = make_service("bad", "failed")
    make_service("other", "failed")
    rule(channel)
    now = timezone.now()
    Silence.objects.create(
        service_id=bad.service_id,
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(minutes=30),
        comment="maintenance",
        author="ops",
    )
    outcome = evaluate(fixture_source(), now)
    assert (outcome.fired, outcome.silenced) == (1, 1)
    assert states(messages()[0]) == [("firing", "other")]
    assert Alert.objects.get(service=bad).silenced
    # The silence ends while it still fires: now it is news.
    later = evaluate(fixture_source(), now + timedelta(minutes=31))
    assert later.fired == 1
    assert states(messages()[-1]) == [("firing", "bad")]


def test_an_alert_resolving_while_silenced_ends_quietly(channel, make_service):
    bad = make_service("bad", "failed")
    rule(channel)
    now = timezone.now()
    Silence.objects.create(
        rule="failing", starts_at=now, ends_at=now + timedelta(hours=1), comment="x", author="a"
    )
    evaluate(fixture_source(), now)
    bad.status = "running"
    bad.save()
    evaluate(fixture_source(), now + timedelta(minutes=5))
    assert Notification.objects.count() == 0
    assert Alert.objects.get().resolved_at is not None


def test_selectors_narrow_a_rule(channel, make_service):
    make_service("api-prod", "failed", owner="team-a", infer_type="real-time")
    make_service("api-test", "failed", owner="team-a", infer_type="real-time")
    make_service("batch-prod", "failed", owner="team-a", infer_type="batch")
    make_service("api-other", "failed", owner="team-b")
    rule(channel, owners=["team-a"], types=["real-time"], name_glob="*-prod")
    evaluate(fixture_source())
    assert states(messages()[0]) == [("firing", "api-prod")]


def test_a_rule_for_other_sources_leaves_this_one_alone(channel, make_service):
    make_service("bad", "failed")
    rule(channel, sources=["elsewhere"])
    assert evaluate(fixture_source()).fired == 0


def test_it_names_the_previous_status(channel, make_service, run):
    bad = make_service("bad", "failed")
    StatusChange.objects.create(
        service=bad, source=bad.source, poll_run=run, at=timezone.now(), from_status="running",
        to_status="failed",
    )  # fmt: skip
    rule(channel)
    evaluate(fixture_source())
    assert messages()[0]["alerts"][0]["annotations"]["previous_status"] == "running"


def test_a_failure_rate_rule_uses_the_tables_windowed_numbers(channel, make_service, run):
    now = timezone.now()
    hot = make_service("hot", invocation_times=1100, failed_times=160)
    cool = make_service("cool", invocation_times=1100, failed_times=110)
    few = make_service("few", invocation_times=1010, failed_times=505)
    for service, calls, failures in ((hot, 1000, 100), (cool, 1000, 100), (few, 1000, 500)):
        ServiceSample.objects.create(
            service=service, poll_run=run, at=now - timedelta(minutes=20), status="running",
            invocation_times=calls, failed_times=failures,
        )  # fmt: skip
        ServiceSample.objects.create(
            service=service, poll_run=run, at=now - timedelta(minutes=1), status="running",
            invocation_times=service.invocation_times, failed_times=service.failed_times,
        )  # fmt: skip
    work_out_windows(now)
    rule(channel, condition="failure_rate", failure_rate=0.5, window="15m", min_calls=20)
    evaluate(fixture_source(), now)
    [line] = messages()[0]["alerts"]
    # hot: 60 of 100 calls failed in the window; cool 10 of 100; few made only 10 calls.
    assert line["labels"]["service_name"] == "hot"
    assert line["annotations"]["calls_in_window"] == "100"
    assert line["annotations"]["failure_rate"] == "60.00%"


def test_a_stale_rule_fires_once_per_source_and_resolves(channel, db):
    now = timezone.now()
    source = Source.objects.create(
        name="lagging", endpoint="http://127.0.0.1:9", project_id="p", interval_seconds=30,
        last_success_at=now - timedelta(minutes=5), last_error="ModelArts.0202: token expired",
    )  # fmt: skip
    rule(channel, name="stale", condition="stale")
    evaluate(source, now)
    [line] = messages()[0]["alerts"]
    assert line["labels"] == {"alertname": "stale", "source": "lagging"}
    assert "token expired" in line["annotations"]["error"]
    source.last_success_at = now
    assert evaluate(source, now).resolved == 1


def test_a_detector_rule_fires_for_stuck_deployments(channel, make_service):
    make_service("stuck", "deploying", first_seen_at=timezone.now() - timedelta(hours=2))
    make_service("fresh", "deploying", first_seen_at=timezone.now())
    rule(channel, name="stuck", condition="detector", detector="stuck")
    evaluate(fixture_source())
    assert states(messages()[0]) == [("firing", "stuck")]


def test_alertmanager_hears_every_firing_alert_again_each_minute(make_service):
    manager = AlertChannel.objects.create(name="am", kind="alertmanager", url="http://127.0.0.1:9")
    make_service("bad", "failed")
    rule(manager)
    start = timezone.now()
    evaluate(fixture_source(), start)
    evaluate(fixture_source(), start + timedelta(seconds=30))
    assert Notification.objects.count() == 1
    evaluate(fixture_source(), start + timedelta(seconds=61))
    assert [states(p) for p in messages()] == [[("firing", "bad")], [("firing", "bad")]]


def test_a_disabled_channel_gets_nothing(channel, make_service):
    make_service("bad", "failed")
    rule(channel)
    AlertChannel.objects.update(enabled=False)
    assert evaluate(fixture_source()).fired == 1
    assert not Notification.objects.exists()


def test_switching_a_rule_off_ends_its_alerts_quietly(channel, make_service):
    make_service("bad", "failed")
    failing = rule(channel)
    evaluate(fixture_source())
    failing.enabled = False
    failing.save()
    evaluate(fixture_source())
    assert Alert.objects.get().resolved_at is not None
    assert Notification.objects.count() == 1  # the firing one only


def test_a_failed_poll_leaves_the_other_rules_alerts_alone(channel, make_service):
    make_service("bad", "failed")
    rule(channel)
    evaluate(fixture_source())
    evaluate(fixture_source(), conditions=["stale"])
    assert Alert.objects.get().resolved_at is None
