"""Evaluating the rules after a poll: which alerts start, resolve or repeat, and the grouped
messages that announce them, written to the outbox in the same transaction.

One message per channel and rule per evaluation, so a first poll that finds 40 failed
services sends each channel one message, never 40. Firing once, resolved once: the open alert
rows are the memory of what was already said, so an unchanged state sends nothing.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dashboard.alerts.conditions import Subject, selects_source, subjects
from dashboard.ingest.sql import insert_rows
from dashboard.models import (
    Alert,
    AlertChannel,
    AlertRule,
    Notification,
    PollRun,
    Silence,
    Source,
    StatusChange,
)

log = logging.getLogger(__name__)
# Alertmanager forgets an alert not re-sent within its resolve_timeout (5 min by default).
ALERTMANAGER_RESEND = timedelta(minutes=1)
FIRING, RESOLVED = "firing", "resolved"


@dataclass
class Outcome:
    """What one evaluation did, for the poller's log line and the benchmark."""

    fired: int = 0
    resolved: int = 0
    repeated: int = 0
    messages: int = 0
    silenced: int = 0
    rules: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"alerts: {self.fired} firing, {self.resolved} resolved, {self.repeated} repeated, "
            f"{self.silenced} silenced, {self.messages} message(s) queued"
        )


def after_poll(run: PollRun) -> Outcome:
    """Evaluate the rules right after a poll: all of them after a successful one; after a
    failed one only staleness, since nothing else the rules read has changed."""
    only = None if run.ok else [AlertRule.Condition.STALE]
    return evaluate(run.source, conditions=only)


def evaluate(
    source: Source, now: datetime | None = None, *, conditions: list[str] | None = None
) -> Outcome:
    """Evaluate the enabled rules (of the given conditions) for one source, as of now."""
    now = now or timezone.now()
    outcome = Outcome()
    if not source.enabled:
        return outcome
    rules = AlertRule.objects.filter(enabled=True).prefetch_related("channels")
    if conditions is not None:
        rules = rules.filter(condition__in=conditions)
    silences = list(Silence.objects.filter(starts_at__lte=now, ends_at__gt=now))
    # A rule switched off (or narrowed away from this source) ends its alerts here, quietly:
    # nobody asked to hear about it any more.
    Alert.objects.filter(source=source, resolved_at=None).exclude(
        rule__in=[rule for rule in rules if selects_source(rule, source)]
    ).filter(rule__condition__in=conditions or AlertRule.Condition.values).update(resolved_at=now)
    for rule in rules:
        if not selects_source(rule, source):
            continue
        with transaction.atomic():
            _evaluate_rule(rule, source, subjects(rule, source, now), silences, now, outcome)
    return outcome


def _silenced(silences: list[Silence], labels: dict[str, str], rule: str) -> bool:
    return any(silence.matches(labels, rule) for silence in silences)


def _evaluate_rule(
    rule: AlertRule,
    source: Source,
    found: dict[str, Subject],
    silences: list[Silence],
    now: datetime,
    outcome: Outcome,
) -> None:
    # The rule's row is locked first (PostgreSQL; SQLite writers queue anyway): another
    # poller evaluating it waits, then sees the alerts this one started.
    AlertRule.objects.select_for_update().filter(pk=rule.pk).exists()
    open_alerts = {
        alert.fingerprint: alert
        for alert in Alert.objects.select_for_update().filter(
            rule=rule, source=source, resolved_at=None
        )
    }
    lines: list[tuple[str, Alert]] = []
    new, changed = [], []
    repeat = timedelta(seconds=rule.repeat_seconds)
    for key, subject in found.items():
        alert = open_alerts.get(key)
        silenced = _silenced(silences, subject.labels, rule.name)
        outcome.silenced += silenced
        if alert is None:
            alert = _new_alert(rule, source, subject, now, silenced)
            new.append(alert)
            if not silenced:
                lines.append((FIRING, alert))
                outcome.fired += 1
            continue
        before = (alert.labels, alert.annotations, alert.silenced, alert.notified_at)
        alert.labels, alert.silenced = subject.labels, silenced
        alert.annotations = {**alert.annotations, **subject.annotations}
        if not silenced and alert.notified_at is None:
            lines.append((FIRING, alert))  # a silence ended: now it is news
            alert.notified_at = now
            outcome.fired += 1
        elif (
            not silenced
            and rule.repeat_seconds
            and alert.acknowledged_at is None
            and now - alert.notified_at >= repeat
        ):
            lines.append((FIRING, alert))
            alert.notified_at = now
            outcome.repeated += 1
        if (alert.labels, alert.annotations, alert.silenced, alert.notified_at) != before:
            changed.append(alert)
    for key, alert in open_alerts.items():
        if key in found:
            continue
        alert.resolved_at = now
        changed.append(alert)
        # Announced only if its firing was: a silenced alert ends as quietly as it began.
        if alert.notified_at is not None and not _silenced(silences, alert.labels, rule.name):
            lines.append((RESOLVED, alert))
            outcome.resolved += 1
    _note_previous_statuses(new)
    _insert(new)
    fields = ["labels", "annotations", "silenced", "notified_at", "resolved_at"]
    Alert.objects.bulk_update(changed, fields, batch_size=1000)
    outcome.messages += _enqueue(rule, source, lines, now)
    if lines:
        outcome.rules.append(rule.name)


def _note_previous_statuses(alerts: list[Alert]) -> None:
    """Each new alert's service's status before its last change, for the message."""
    pks = [alert.service_id for alert in alerts if alert.service_id]
    previous: dict[int, str] = {}
    for start in range(0, len(pks), 1000):
        changes = StatusChange.objects.filter(service_id__in=pks[start : start + 1000])
        rows = changes.order_by("service_id", "at", "id").values_list("service_id", "from_status")
        previous.update(rows)  # in time order: the last change of each service stays
    for alert in alerts:
        if previous.get(alert.service_id):
            alert.annotations = {**alert.annotations, "previous_status": previous[alert.service_id]}


def _insert(alerts: list[Alert]) -> None:
    """INSERT the new alerts as plain rows: a first poll that finds thousands of failed
    services spent most of its evaluation in bulk_create's per-field preparation."""
    columns = ("rule_id", "source_id", "service_id", "fingerprint", "labels", "annotations",
               "started_at", "notified_at", "silenced", "acknowledged_by")  # fmt: skip
    rows = [
        (
            alert.rule_id,
            alert.source_id,
            alert.service_id,
            alert.fingerprint,
            json.dumps(alert.labels),
            json.dumps(alert.annotations),
            alert.started_at,
            alert.notified_at,
            alert.silenced,
            "",
        )  # fmt: skip
        for alert in alerts
    ]
    insert_rows(Alert, columns, rows)


def _new_alert(
    rule: AlertRule, source: Source, subject: Subject, now: datetime, silenced: bool
) -> Alert:
    # By id: setting the related objects cost a first poll's 6,600 new alerts 0.1 s.
    return Alert(
        rule_id=rule.pk,
        source_id=source.pk,
        service_id=subject.service_pk,
        fingerprint=subject.fingerprint,
        labels=subject.labels,
        annotations=subject.annotations,
        started_at=now,
        silenced=silenced,
        notified_at=None if silenced else now,
    )


def _enqueue(rule: AlertRule, source: Source, lines: list[tuple[str, Alert]], now: datetime) -> int:
    """One outbox message per channel of the rule; Alertmanager also hears, once a minute,
    every alert still firing, or it would resolve them itself."""
    queued = 0
    for channel in rule.channels.all():
        if not channel.enabled:
            continue
        sent = lines
        if channel.kind == AlertChannel.Kind.ALERTMANAGER:
            sent = _with_still_firing(rule, source, channel, lines, now)
        if sent:
            enqueue(channel, rule.name, [line(state, alert, now) for state, alert in sent], now)
            queued += 1
    return queued


def _with_still_firing(
    rule: AlertRule,
    source: Source,
    channel: AlertChannel,
    lines: list[tuple[str, Alert]],
    now: datetime,
) -> list[tuple[str, Alert]]:
    last = (
        Notification.objects.filter(channel=channel, rule=rule.name)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if lines or last is None or now - last >= ALERTMANAGER_RESEND:
        told = {alert.fingerprint for _, alert in lines}
        firing = Alert.objects.filter(
            rule=rule, source=source, resolved_at=None, silenced=False
        ).exclude(fingerprint__in=told)
        return [*lines, *((FIRING, alert) for alert in firing)]
    return lines


def line(state: str, alert: Alert, now: datetime) -> dict:
    """One alert as a message carries it (the outbox's JSON)."""
    return {
        "state": state,
        "labels": alert.labels,
        "annotations": {
            **alert.annotations,
            "summary": alert.annotations.get("summary") or _summary(alert),
        },
        "starts_at": alert.started_at.isoformat(),
        "ends_at": alert.resolved_at.isoformat() if state == RESOLVED else None,
        "url": service_url(alert.labels),
        "fingerprint": alert.fingerprint,
    }


def _summary(alert: Alert) -> str:
    labels = alert.labels
    return f"{labels.get('service_name') or labels.get('service_id')} is {labels.get('status')}"


def service_url(labels: dict[str, str]) -> str:
    """The service's page on the dashboard (its source's health for a source alert)."""
    base = settings.DASHBOARD_BASE_URL
    if not base:
        return ""
    source = urlencode({"source": labels.get("source", "")})
    if not labels.get("service_id"):
        return f"{base}/polls/?{source}"
    return f"{base}/services/{quote(labels['service_id'], safe='')}/?{source}"


def enqueue(channel: AlertChannel, rule: str, alerts: list[dict], now: datetime) -> Notification:
    """Put one message in the outbox, due now."""
    payload = {"rule": rule, "external_url": settings.DASHBOARD_BASE_URL, "alerts": alerts}
    return Notification.objects.create(
        channel=channel,
        rule=rule,
        message_id=f"msg_{uuid.uuid4().hex}",
        payload=payload,
        created_at=now,
        next_attempt_at=now,
    )
