"""Which services (or sources) a rule's condition holds for right now."""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import F, QuerySet

from dashboard.models import AlertRule, Service, Source
from dashboard.queries.detectors import DETECTORS, detected, detector_columns
from dashboard.queries.sources import visible
from dashboard.queries.windows import WINDOWS, with_window

# A rule's window is one of the table's, so the numbers are the same as the table shows.
RULE_WINDOWS = WINDOWS
SERVICE_COLUMNS = ("pk", "service_id", "service_name", "status", "owner", "infer_type")


@dataclass(frozen=True)
class Subject:
    """What a rule fires for: one service, or (for staleness) one source."""

    fingerprint: str
    labels: dict[str, str]
    service_pk: int | None = None
    annotations: dict[str, str] = field(default_factory=dict)


def fingerprint(rule: str, source: str, service_id: str = "") -> str:
    """Stable per rule and subject: Alertmanager identifies an alert by it."""
    key = "\0".join((rule, source, service_id)).encode()
    return hashlib.blake2b(key, digest_size=8).hexdigest()


def selects_source(rule: AlertRule, source: Source) -> bool:
    return not rule.sources or source.name in rule.sources


def subjects(rule: AlertRule, source: Source, now: datetime) -> dict[str, Subject]:
    """Every subject the rule fires for in this source, by fingerprint."""
    if rule.condition == AlertRule.Condition.STALE:
        if not source.is_stale(now):
            return {}
        labels = {"alertname": rule.name, "source": source.name}
        notes = {"summary": f"{source.name}: no successful poll for over two intervals"}
        if source.last_error:
            notes["error"] = source.last_error
        key = fingerprint(rule.name, source.name)
        return {key: Subject(key, labels, annotations=notes)}
    rows = _matching(rule, source, now)
    found = {}
    for row in rows:
        if rule.name_glob and not fnmatch.fnmatchcase(row["service_name"], rule.name_glob):
            continue
        key = fingerprint(rule.name, source.name, row["service_id"])
        labels = {
            "alertname": rule.name,
            "service_id": row["service_id"],
            "service_name": row["service_name"],
            "status": row["status"],
            "source": source.name,
            "owner": row["owner"],
            "infer_type": row["infer_type"],
        }
        annotations = {}
        rate = row.get("w_rate", row.get("failure_rate"))
        if rate is not None:
            annotations["failure_rate"] = f"{rate * 100:.2f}%"
        if "w_calls" in row:
            annotations["window"] = rule.window
            annotations["calls_in_window"] = str(row["w_calls"])
        found[key] = Subject(key, labels, row["pk"], annotations)
    return found


def _matching(rule: AlertRule, source: Source, now: datetime) -> QuerySet:
    services = visible(Service.objects.filter(source=source), [source])
    if rule.owners:
        services = services.filter(owner__in=rule.owners)
    if rule.types:
        services = services.filter(infer_type__in=rule.types)
    columns = (*SERVICE_COLUMNS, "failure_rate")
    if rule.condition == AlertRule.Condition.STATUSES:
        return services.filter(status__in=rule.statuses).values(*columns)
    if rule.condition == AlertRule.Condition.DETECTOR:
        flagged = detected(rule.detector, now)
        return services.alias(**detector_columns(now)).filter(flagged).values(*columns)
    # failure_rate: the windows the poller keeps (they end at this poll), read through the
    # window's rate index.
    return (
        with_window(services, rule.window)
        .filter(w_calls__gte=max(1, rule.min_calls))
        .filter(w_rate__gte=rule.failure_rate)
        .annotate(w_calls=F("w_calls"), w_rate=F("w_rate"))
        .values(*columns, "w_calls", "w_rate")
    )


def check_rule(rule: AlertRule) -> list[str]:
    """What is wrong with a rule's condition, in words naming the field; empty when fine."""
    problems = []
    condition = rule.condition
    if condition == AlertRule.Condition.STATUSES and not rule.statuses:
        problems.append("statuses: name at least one status")
    if condition == AlertRule.Condition.FAILURE_RATE:
        if rule.failure_rate is None or not 0 <= rule.failure_rate <= 1:
            problems.append("failure_rate: a number from 0 to 1")
        if rule.window not in RULE_WINDOWS:
            problems.append(f"window: one of {', '.join(RULE_WINDOWS)}")
    if condition == AlertRule.Condition.DETECTOR and rule.detector not in DETECTORS:
        problems.append(f"detector: one of {', '.join(DETECTORS)}")
    if condition not in AlertRule.Condition.values:
        problems.append(f"condition: one of {', '.join(AlertRule.Condition.values)}")
    return problems
