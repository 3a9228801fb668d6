"""The per-service APIs of a simulated fleet: ShowService, events, monitor and update logs.

Everything here is derived from the fleet's plans (fleet.py) and a `random.Random` seeded with
the fleet's seed, the service's index and what is being made, so a service's detail is the same
on every call and every run, and agrees with what the list says at that moment: a `failed`
service has an error_msg and the abnormal events that led to it, a `concerning` one runs fewer
instances than it asked for, a `deploying` one has a RUNNING update log.

Each model gets environment variables with secret-looking values ("sim-secret-…"), so tests can
prove that a client never keeps them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from dashboard.devtools.simulator.fleet import (
    DAY,
    FAILURE_REASONS,
    GONE,
    MINUTE,
    NEVER,
    Fleet,
    Plan,
    Profile,
    phase_at,
)

SECRET_PREFIX = "sim-secret-"
# Event logs of periodic services stop here: weeks of hourly incidents would be thousands.
MAX_CYCLES = 20
# Update logs keep a restarting service's latest redeployments only.
MAX_REDEPLOYS = 5
MAX_EVENTS_LIMIT = 1000
# Why a service fails, keyed by the reason the fleet drew for it (one of four kinds).
CAUSES = dict(
    zip(FAILURE_REASONS, ("health-check", "no-resources", "image-pull", "oom-killed"), strict=True)
)
# Per instance: vCPUs, memory MB, accelerator cards, accelerator memory MB, accelerator kind.
FLAVOR_SPECS: dict[str, tuple[int, int, int, int, str]] = {
    "modelarts.vm.cpu.2u": (2, 8192, 0, 0, ""),
    "modelarts.vm.cpu.8u": (8, 32768, 0, 0, ""),
    "modelarts.vm.gpu.t4": (8, 32768, 1, 16384, "gpu"),
    "modelarts.vm.gpu.v100": (8, 65536, 1, 32768, "gpu"),
    "modelarts.kat1.xlarge": (8, 32768, 1, 8192, "npu"),  # Ascend 310
}
# Pangu models run on Ascend NPUs, whatever flavor the fleet drew for them.
NPU_FLAVOR = "modelarts.kat1.xlarge"
SECRET_ENV_NAMES = (
    "DB_PASSWORD",
    "OBS_SECRET_ACCESS_KEY",
    "HF_TOKEN",
    "REDIS_PASSWORD",
    "API_KEY",
    "WEBHOOK_SECRET",
)
# Moments of a deployment's steps, as fractions of its length, in the wording of the API's
# documented example (service_events_example_v1_otc.json).
DEPLOY_STEPS = (
    (0.00, "start to deploy service"),
    (0.01, "building image for model [{model}]"),
    (0.15, "model ({model}) build image success"),
    (0.16, "preparing environment"),
    (0.35, "[{model}] prepare environment success"),
    (0.36, "[{model}] schedule resource success"),
    (0.37, "[{model}] pulling model image"),
    (0.70, "[{model}] pull image success"),
    (0.71, "[{model}] starting model"),
)
# How far a failing first deployment gets: the steps before its failure.
STEPS_BEFORE_FAILURE = {"no-resources": 5, "image-pull": 7, "health-check": 9, "oom-killed": 9}


@dataclass(frozen=True)
class EventsRequest:
    """A validated events query; `start` is a record index, whatever offset meant."""

    event_type: str | None = None
    start_time: int | None = None  # epoch ms
    end_time: int | None = None
    order: str = "desc"
    start: int = 0
    limit: int = MAX_EVENTS_LIMIT


Event = tuple[int, str, str]  # simulated ms, event_type, event_info
Segment = tuple[str, int, int]  # status, from, to (simulated ms)


class ServiceDetails:
    """The per-service bodies of `fleet`; each method answers None for an unknown service."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def show(self, service_id: str, now: float | None = None) -> dict[str, Any] | None:
        """ShowService's body: the fleet's, with a detailed error_msg and models' envs."""
        now = self._now(now)
        body = self.fleet.show(service_id, now)
        if body is None:
            return None
        profile = self._profile(service_id)
        if body["status"] == "failed":
            body["error_msg"] = self.error_msg(profile)
        body["config"] = [self._config(profile, profile.model_version, body["status"])]
        return body

    def events(
        self, service_id: str, query: EventsRequest, now: float | None = None
    ) -> dict[str, Any] | None:
        """The events API's body: what happened to the service, filtered and paged."""
        now = self._now(now)
        item = self._item(service_id, now)
        if item is None:
            return None
        profile = self._profile(service_id)
        fleet = self.fleet
        events = [
            (fleet.wall_ms(moment), kind, info)
            for moment, kind, info in self._history(profile, fleet.elapsed_ms(now))
        ]
        events = [
            event
            for event in events
            if (query.event_type is None or event[1] == query.event_type)
            and (query.start_time is None or event[0] >= query.start_time)
            and (query.end_time is None or event[0] <= query.end_time)
        ]
        # Stable: events of one moment keep the order in which they happened.
        events.sort(key=lambda event: event[0], reverse=query.order == "desc")
        page = events[query.start : query.start + query.limit]
        return {
            "service_name": item["service_name"],
            "total_count": len(events),
            "service_id": service_id,
            "count": len(page),
            "events": [
                {"event_type": kind, "event_info": info, "occur_time": moment}
                for moment, kind, info in page
            ],
        }

    def monitor(self, service_id: str, now: float | None = None) -> dict[str, Any] | None:
        """The monitor API's body: instances running against those asked for, and use."""
        now = self._now(now)
        item = self._item(service_id, now)
        if item is None:
            return None
        profile = self._profile(service_id)
        x = self.fleet.elapsed_ms(now)
        phase = phase_at(profile.plan, x)
        if phase is None:  # not listed: _item would have said so already
            return None
        status, since, progress = phase
        ready = self.ready(profile, status, since, progress)
        desired = profile.instance_count
        per_minute = profile.rate * MINUTE * ready / desired
        return {
            "service_name": item["service_name"],
            "service_id": service_id,
            "service_running_instance_count": ready,
            "service_instance_count": desired,
            "req_count_per_min": round(per_minute),
            "monitors": [self._usage(profile, item, status, ready, x)],
        }

    def update_logs(self, service_id: str, now: float | None = None) -> dict[str, Any] | None:
        """The update-logs API's body: every deployment of the service, newest first."""
        now = self._now(now)
        item = self._item(service_id, now)
        if item is None:
            return None
        profile = self._profile(service_id)
        logs = [
            self._log(profile, moment, result, version)
            for moment, result, version in self._deployments(profile, self.fleet.elapsed_ms(now))
        ]
        return {
            "service_name": item["service_name"],
            "service_id": service_id,
            "logs": logs[::-1],
        }

    # What tests and other modules may ask about a service.

    def envs(self, service_id: str) -> dict[str, str]:
        """The environment variables of the service's model, secret values included."""
        profile = self._profile(service_id)
        rng = self._rng(profile, "envs")
        envs = {
            "MODEL_NAME": profile.model_name,
            "LOG_LEVEL": ("INFO", "INFO", "DEBUG", "WARNING")[int(rng.random() * 4)],
        }
        names = list(SECRET_ENV_NAMES)
        rng.shuffle(names)
        for name in names[: 1 + int(rng.random() * 3)]:
            envs[name] = f"{SECRET_PREFIX}{rng.getrandbits(64):016x}"
        return envs

    def cause(self, profile: Profile) -> str:
        """Why the service fails whenever it does: one of CAUSES' four kinds."""
        return CAUSES[profile.failure_reason]

    def error_msg(self, profile: Profile) -> str:
        """The error_msg ShowService gives while the service is failed."""
        rng = self._rng(profile, "error")
        model, flavor = self._model(profile), self._flavor(profile)
        cpus, memory, *_ = FLAVOR_SPECS[flavor]
        count = profile.instance_count
        message = {
            "health-check": (
                f"[{model}] instance health check failed: GET /health on port 8080 got no"
                f" answer within {rng.choice((300, 600, 1200))} s after the model started"
                f" ({1 + int(rng.random() * 5)} restarts). Check that the model server listens"
                " on 0.0.0.0:8080."
            ),
            "no-resources": (
                f"Insufficient resources: the public resource pool has no capacity for"
                f" {count} x {flavor} ({count * cpus} vCPUs, {count * memory // 1024} GiB)"
                f" and the project's quota allows {int(rng.random() * count)} more instances."
                " Use fewer instances, another flavor or a dedicated resource pool."
            ),
            "image-pull": (
                f"[{model}] pull image failed: swr.cn-north-4.myhuaweicloud.com/"
                f"{profile.model_name}:{profile.model_version}: manifest unknown"
                f" (ErrImagePull, {3 + int(rng.random() * 5)} attempts). Was the image deleted"
                " from SWR?"
            ),
            "oom-killed": (
                f"[{model}] container exited with code 137 (OOMKilled): memory use reached the"
                f" {memory} MB limit of {flavor}. Choose a larger flavor or lower the batch size."
            ),
        }[self.cause(profile)]
        prefix = "Batch job failed" if profile.infer_type == "batch" else "Service failed"
        return f"{prefix}: {message}"

    def ready(self, profile: Profile, status: str, since: int, progress: int) -> int:
        """Instances running in a phase: all while running, some while concerning, none when
        failed or stopped, and the share of a deployment's progress while deploying."""
        desired = profile.instance_count
        if status == "running":
            return desired
        if status == "deploying":
            return progress * desired // 100
        if status == "concerning":
            # The same instances are missing for the whole incident.
            rng = random.Random(f"{self.fleet.seed}:{profile.index}:concerning:{since}")
            return desired - 1 - int(rng.random() * (desired // 2))
        return 0

    # Building blocks.

    def _now(self, now: float | None) -> float:
        return self.fleet.clock() if now is None else now

    def _profile(self, service_id: str) -> Profile:
        index = self.fleet.index_of(service_id)
        if index is None:
            raise KeyError(service_id)
        return self.fleet.profiles[index]

    def _item(self, service_id: str, now: float) -> dict[str, Any] | None:
        index = self.fleet.index_of(service_id)
        return None if index is None else self.fleet.item(index, now)

    def _rng(self, profile: Profile, purpose: str) -> random.Random:
        # Never the fleet's own per-service stream: drawing from it would change the fleet.
        return random.Random(f"{self.fleet.seed}:{profile.index}:detail:{purpose}")

    @staticmethod
    def _model(profile: Profile, version: str | None = None) -> str:
        return f"{profile.model_name} {version or profile.model_version}"

    @staticmethod
    def _flavor(profile: Profile) -> str:
        return NPU_FLAVOR if profile.model_name.startswith("pangu") else profile.flavor

    def _config(self, profile: Profile, version: str, status: str) -> dict[str, Any]:
        ready = status in ("running", "concerning", "finished")
        return {
            "model_id": profile.model_id,
            "model_name": profile.model_name,
            "model_version": version,
            "specification": self._flavor(profile),
            "custom_spec": {},
            "status": "ready" if ready else "notReady",
            "weight": 100,
            "instance_count": profile.instance_count,
            "scaling": False,
            "envs": self.envs(profile.service_id),
            "additional_properties": {},
            "support_debug": False,
        }

    def _usage(
        self, profile: Profile, item: dict[str, Any], status: str, ready: int, x: int
    ) -> dict[str, Any]:
        """One model's monitors[] entry; figures drift minute by minute."""
        rng = self._rng(profile, f"monitor:{x // MINUTE}")
        cpus, memory, cards, card_memory, kind = FLAVOR_SPECS[self._flavor(profile)]
        busy = (0.7, 0.98) if status == "concerning" else (0.1, 0.65)
        memory_busy = (0.9, 0.99) if self.cause(profile) == "oom-killed" else busy
        usage = {
            "model_id": profile.model_id,
            "model_name": profile.model_name,
            "model_version": profile.model_version,
            "invocation_times": item["invocation_times"],
            "failed_times": item["failed_times"],
            "cpu_core_usage": round(cpus * ready * rng.uniform(*busy), 2),
            "cpu_core_total": cpus * ready,
            "cpu_memory_usage": round(memory * ready * rng.uniform(*memory_busy)),
            "cpu_memory_total": memory * ready,
        }
        if kind:
            usage |= {
                f"{kind}_usage": round(cards * ready * rng.uniform(*busy), 2),
                f"{kind}_total": cards * ready,
                f"{kind}_memory_usage": round(card_memory * ready * rng.uniform(*busy), 2),
                f"{kind}_memory_total": card_memory * ready,
            }
        usage["model_running_instance_count"] = ready
        usage["model_instance_count"] = profile.instance_count
        return usage

    def _log(self, profile: Profile, moment: int, result: str, version: str) -> dict[str, Any]:
        count = profile.instance_count
        log: dict[str, Any] = {
            "result": result,
            "update_time": self.fleet.wall_ms(moment),
            "config": [self._config(profile, version, "running")],
            "success_num": count if result == "SUCCESS" else 0,
            "failed_num": count if result == "FAIL" else 0,
        }
        if profile.infer_type == "edge" and result != "RUNNING":
            log["result_detail"] = [
                {
                    "result": result == "SUCCESS",
                    "node_id": f"{profile.service_id[:8]}-node-{n}",
                    "node_name": f"edge-node-{n}",
                    "operation": "deploy",
                }
                for n in range(1, count + 1)
            ]
        return log

    def _deployments(self, profile: Profile, x: int) -> list[tuple[int, str, str]]:
        """(when, result, model version) of every deployment up to x, oldest first."""
        plan = profile.plan
        rng = self._rng(profile, "history")
        versions = _older_versions(profile.model_version, int(rng.random() * 3))
        # Earlier versions of the model, deployed days apart before the current one.
        moments = [plan.published]
        for _ in versions:
            moments.insert(0, moments[0] - _between(rng, 2, 15) * DAY)
        deployments = [
            (moment, "SUCCESS", version) for moment, version in zip(moments, versions, strict=False)
        ]
        first_failed = plan.final == "failed" and plan.event == plan.deployed
        result = "RUNNING" if x < plan.deployed else "FAIL" if first_failed else "SUCCESS"
        deployments.append((plan.published, result, profile.model_version))
        redeploys = [
            (start, "RUNNING" if x < end else "SUCCESS", profile.model_version)
            for status, start, end in _segments(plan, x)
            if status == "deploying" and start != plan.published  # a restart's redeployment
        ]
        return deployments + redeploys[-MAX_REDEPLOYS:]

    def _history(self, profile: Profile, x: int) -> list[Event]:
        """Every event up to simulated time x, oldest first."""
        segments = _segments(profile.plan, x)
        events: list[Event] = []
        previous = ""
        for position, (status, start, end) in enumerate(segments):
            following = segments[position + 1][0] if position + 1 < len(segments) else ""
            if status == "deploying":
                events += self._deploy_events(profile, start, end, x, fails=following == "failed")
            else:
                events += self._change_events(profile, previous, status, start)
            previous = status
        return [event for event in events if event[0] <= x]

    def _deploy_events(
        self, profile: Profile, start: int, end: int, x: int, *, fails: bool
    ) -> list[Event]:
        model = self._model(profile)
        steps = DEPLOY_STEPS[: STEPS_BEFORE_FAILURE[self.cause(profile)]] if fails else DEPLOY_STEPS
        return [
            (start + round((end - start) * share), "normal", text.format(model=model))
            for share, text in steps
        ]

    def _change_events(self, profile: Profile, previous: str, status: str, at: int) -> list[Event]:
        model = self._model(profile)
        desired = profile.instance_count
        ready = self.ready(profile, status, at, 100)
        if status == "running":
            if previous == "deploying":
                return [(at, "normal", f"[{model}] model started; {desired}/{desired} ready")]
            return [(at, "normal", f"[{model}] all instances ready again; {desired}/{desired}")]
        if status == "concerning":
            if previous == "failed":
                return [(at, "normal", f"[{model}] instances restarting; {ready}/{desired} ready")]
            symptom = {
                "oom-killed": "was OOMKilled (exit code 137) and is restarting",
                "health-check": "failed its health check and is restarting",
            }.get(self.cause(profile), "was rescheduled and is not ready")
            number = _between(self._rng(profile, f"instance:{at}"), 0, desired)
            instance = f"{profile.service_id[:8]}-{number}"
            info = f"[{model}] instance {instance} {symptom}; {ready}/{desired} ready"
            return [(at, "abnormal", info)]
        messages = {
            "failed": ("abnormal", self.error_msg(profile)),
            "stopping": ("normal", "start to stop service"),
            "stopped": ("normal", "service stopped"),
            "pending": ("normal", "service stopped; waiting to be scheduled to start again"),
            "waiting": (
                "abnormal",
                f"waiting for resources: no free capacity for {self._flavor(profile)}",
            ),
            "deleting": ("normal", "start to delete service"),
            "finished": ("normal", "batch job finished: all input processed"),
        }
        if status not in messages:
            return []
        kind, info = messages[status]
        return [(at, kind, info)]


def _segments(plan: Plan, x: int) -> list[Segment]:
    """The phases a service went through up to x, oldest first; of a periodic plan, only the
    last MAX_CYCLES cycles."""
    if x < plan.published:
        return []
    segments: list[Segment] = [("deploying", plan.published, plan.deployed)]
    if plan.event > plan.deployed:
        segments.append(("running", plan.deployed, plan.event))
    if x < plan.event or plan.event == NEVER:
        return segments
    episode = sum(length for _, length in plan.episode)
    if plan.period:
        current = (x - plan.event) // plan.period
        cycles = range(max(0, current - MAX_CYCLES + 1), current + 1)
    else:
        cycles = range(1)
    for cycle in cycles:
        at = plan.event + cycle * (plan.period or 0)
        for status, length in plan.episode:
            segments.append((status, at, at + length))
            at += length
        if plan.period:
            segments.append(("running", at, plan.event + (cycle + 1) * plan.period))
    if not plan.period and plan.final != GONE:
        segments.append((plan.final, plan.event + episode, NEVER))
    return [segment for segment in segments if segment[1] <= x]


def _older_versions(version: str, count: int) -> list[str]:
    """`count` plausible versions before `version`, oldest first."""
    parts = [int(part) if part.isdigit() else 0 for part in version.split(".")[:3]]
    major, minor, patch = (parts + [0, 0, 0])[:3]
    older = []
    for _ in range(count):
        if patch:
            patch -= 1
        elif minor:
            minor, patch = minor - 1, 9
        else:
            major, minor, patch = max(0, major - 1), 9, 9
        older.append(f"{major}.{minor}.{patch}")
    return older[::-1]


def _between(rng: random.Random, low: int, high: int) -> int:
    return low + int(rng.random() * (high - low))
