"""Each service's detail from ModelArts (why it failed, its instances, events, deployments),
fetched by the poller: for unhealthy services within a budget of API calls per source and
poll, and for any service whose page asked. Never for every service every poll: the detail
APIs take a call per service each, and a fleet of 100,000 has 100,000 services.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from dashboard.ingest.credentials import SourceConfigError, build_client
from dashboard.modelarts import (
    APIError,
    EventPage,
    ModelArtsClient,
    ModelArtsError,
    ModelConfig,
    ModelMonitor,
    Monitor,
    RetryPolicy,
    ServiceDetail,
    ServiceNotFound,
    TransportError,
    UpdateLogs,
)
from dashboard.models import Service, Source
from dashboard.models import ServiceDetail as StoredDetail

log = logging.getLogger(__name__)
# ShowService, its events and its monitoring figures; a page that asks adds the update logs.
CALLS_PER_SERVICE = 3
EVENTS_KEPT = 50
LOGS_KEPT = 20
# Pages waiting for a fetch taken per round.
ASKED_PER_ROUND = 20
ONE_ATTEMPT = RetryPolicy(attempts=1)


@dataclass
class Fetched:
    """What one round did: services tried, API calls budgeted, tries that failed."""

    services: int = 0
    calls: int = 0
    failed: int = 0


def fetch_details(
    source: Source, *, budget: int | None = None, asked_only: bool = False
) -> Fetched:
    """Fetch what pages asked for, then (unless asked_only) the details of unhealthy services
    that are missing or oldest, within `budget` API calls (DASHBOARD_DETAIL_CALLS_PER_POLL)."""
    budget = settings.DASHBOARD_DETAIL_CALLS_PER_POLL if budget is None else budget
    done = Fetched()
    queue = [(service, True) for service in _asked(source)]
    if not asked_only:
        queue += [(service, False) for service in _unhealthy(source, budget, queue)]
    if not queue:
        return done
    # Half an interval at most: a slow API must not hold up the next poll.
    deadline = time.monotonic() + max(5.0, 0.5 * source.interval_seconds)
    try:
        # One attempt per call: a detail that fails is tried again at a later poll, and the
        # budget counts the requests actually made.
        with build_client(source, retry=ONE_ATTEMPT) as client:
            for service, asked in queue:
                most = CALLS_PER_SERVICE + asked  # a page also shows the update logs
                over = done.calls + most > budget and not asked
                if over or time.monotonic() > deadline:
                    break
                ok, calls = _fetch_one(client, service, asked=asked, deadline=deadline)
                done.services += 1
                done.calls += calls
                done.failed += not ok
    except SourceConfigError as exc:
        log.warning("details of %s not fetched: %s", source.name, exc)
    return done


def _asked(source: Source) -> list[Service]:
    """Services whose page asked for a fresh detail, oldest request first."""
    asked = Service.objects.filter(source=source, detail__requested_at__isnull=False)
    return list(asked.order_by("detail__requested_at")[:ASKED_PER_ROUND])


def _unhealthy(source: Source, budget: int, queue: list) -> list[Service]:
    """Unhealthy services whose detail is missing or older than DASHBOARD_DETAIL_MAX_AGE,
    never fetched first, then the longest ago: spread over polls, each gets its turn."""
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.DASHBOARD_DETAIL_MAX_AGE)
    stuck_before = now - timedelta(minutes=settings.DASHBOARD_STUCK_MINUTES)
    deploying_long = Q(status="deploying") & (
        Q(status_changed_at__lt=stuck_before)
        | Q(status_changed_at__isnull=True, first_seen_at__lt=stuck_before)
    )
    unhealthy = (
        Q(status__in=("failed", "concerning"))
        | deploying_long
        | Q(detail__running_instances__lt=F("detail__desired_instances"))
    )
    due = Q(detail__isnull=True) | Q(detail__attempted_at__lt=stale_before)
    due |= Q(detail__attempted_at__isnull=True)
    services = Service.objects.filter(source=source, gone_at=None).filter(unhealthy & due)
    services = services.exclude(pk__in=[service.pk for service, _ in queue])
    oldest_first = F("detail__attempted_at").asc(nulls_first=True)
    return list(services.order_by(oldest_first, "pk")[: budget // CALLS_PER_SERVICE])


def _fetch_one(
    client: ModelArtsClient, service: Service, *, asked: bool, deadline: float
) -> tuple[bool, int]:
    """Fetch and store one service's detail: whether ModelArts gave it, and the calls made
    (the first that fails ends it)."""
    service_id = service.service_id
    now = timezone.now()
    fields: dict[str, object] = {"attempted_at": now, "requested_at": None}
    calls = 1
    try:
        shown = client.get_service(service_id, deadline=deadline)
        calls += 1
        events = client.list_events(service_id, limit=EVENTS_KEPT, order="desc", deadline=deadline)
        calls += 1
        monitor = client.get_monitor(service_id, deadline=deadline)
        calls += asked
        logs = client.list_update_logs(service_id, deadline=deadline) if asked else None
    except ServiceNotFound as exc:
        fields.update(not_found=True, error_code=exc.code, error_message=str(exc))
    except APIError as exc:
        fields.update(error_code=exc.code, error_message=str(exc))
    except TransportError as exc:
        fields.update(error_code="unreachable", error_message=str(exc))
    except ModelArtsError as exc:
        fields.update(error_code="bad-response", error_message=str(exc))
    else:
        fields.update(_stored(shown, events, monitor, logs), fetched_at=now)
    StoredDetail.objects.update_or_create(service=service, defaults=fields)
    if fields.get("error_code"):
        log.info("detail of %s not fetched: %s", service_id, fields["error_message"])
        return False, calls
    return True, calls


def _stored(
    shown: ServiceDetail, events: EventPage, monitor: Monitor, logs: UpdateLogs | None
) -> dict[str, object]:
    """The detail as the table stores it: plain JSON, env names only (never their values)."""
    usage = {model.model_id or model.model_name: model for model in monitor.models}
    fields: dict[str, object] = {
        "not_found": False,
        "error_code": "",
        "error_message": "",
        "error_msg": shown.error_msg,
        "running_instances": monitor.running_instances,
        "desired_instances": monitor.desired_instances,
        "requests_per_minute": monitor.requests_per_minute,
        "access_address": shown.access_address,
        "model_configs": [
            _model(config, usage.get(config.model_id or config.model_name))
            for config in shown.config
        ],
        "events": [
            {"type": event.event_type, "info": event.event_info, "at": _iso(event.occur_time)}
            for event in sorted(events.events, key=_newest_first)[:EVENTS_KEPT]
        ],
    }
    if logs is not None:
        fields["update_logs"] = [
            {
                "at": _iso(entry.update_time),
                "result": entry.result,
                "models": [_model(config, None) for config in entry.config],
                "success": entry.success_num,
                "failed": entry.failed_num,
            }
            for entry in logs.logs[:LOGS_KEPT]
        ]
    return fields


def _model(config: ModelConfig, usage: ModelMonitor | None) -> dict[str, object]:
    model = {
        "model_name": config.model_name,
        "model_version": config.model_version,
        "specification": config.specification,
        "instance_count": config.instance_count,
        "weight": config.weight,
        "status": config.status,
        "env_names": list(config.env_names),
    }
    if usage is not None:
        model.update(
            running_instances=usage.running_instances,
            desired_instances=usage.desired_instances,
            cpu_core_usage=usage.cpu_core_usage,
            cpu_memory_usage=usage.cpu_memory_usage,
            gpu_usage=usage.gpu_usage,
            npu_usage=usage.npu_usage,
        )
    return model


def _newest_first(event) -> float:
    return -event.occur_time.timestamp() if event.occur_time else 0.0


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
