"""A simulated ModelArts fleet: every service's state is a pure function of time.

Each service draws its static attributes (ids, name, type, call rate, lifecycle plan) from its
own `random.Random(f"{seed}:{index}")`, so service 7 of a fleet is the same service whatever
the fleet's size. Its state at a moment is then computed in closed form from those attributes
and the simulated time elapsed since `start`; nothing is stepped, so any moment can be asked
for in any order and counters never go backwards.

Lifecycle, in simulated time (`elapsed = (now - start) * speed`):

* publish → `deploying` (progress 0→99 over 60–180 s) → `running`; some deployments fail.
* "flaky" real-time services have periodic incidents: `concerning`, sometimes escalating to
  `failed` and recovering through `concerning`, then back to `running`.
* "restarting" services cycle `stopping` → `pending` (→ `waiting`) → `deploying` → `running`.
* some services stop for good (`stopping` → `stopped`), by hand or by an auto-stop schedule.
* batch services run for 5–90 minutes, then `finished` (or `failed`).
* a few services are deleted during the run (`deleting`, then no longer listed).

Timestamps are wall-clock: an event `d` simulated ms after start happens at
`start + d / speed`, so a fast fleet simply lives through its plans sooner.
"""

from __future__ import annotations

import bisect
import json
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dashboard.ingest.collector import collector_paused

Clock = Callable[[], float]

STATUSES = (
    "running",
    "deploying",
    "concerning",
    "failed",
    "stopped",
    "finished",
    "stopping",
    "deleting",
    "pending",
    "waiting",
)
INFER_TYPES = ("real-time", "batch", "edge")
SORT_KEYS = ("publish_at", "service_name", "transition_at")
ORDERS = ("asc", "desc")
WORKSPACE_ID = "0"

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
NEVER = 1 << 62
# The terminal "status" of a deleted service: it is no longer listed at all.
GONE = "gone"

FAMILIES = (
    ("resnet50", ("imgcls", "feature")),
    ("bert", ("ner", "sentiment", "qa")),
    ("yolov8", ("detect", "seg")),
    ("qwen2-7b", ("chat", "summarize")),
    ("llama3-8b", ("chat", "rag")),
    ("glm4-9b", ("chat",)),
    ("whisper", ("asr",)),
    ("vit", ("imgcls",)),
    ("t5", ("translate", "summarize")),
    ("efficientnet", ("imgcls",)),
    ("sdxl", ("txt2img",)),
    ("crnn", ("ocr",)),
    ("xgboost", ("churn", "fraud")),
    ("pangu-nlp", ("classify", "chat")),
)
TASK_TEXT = {
    "imgcls": "Image classification",
    "feature": "Image embeddings",
    "ner": "Named-entity recognition",
    "sentiment": "Sentiment scoring",
    "qa": "Extractive question answering",
    "detect": "Object detection",
    "seg": "Instance segmentation",
    "chat": "Chat assistant",
    "summarize": "Document summaries",
    "rag": "Retrieval-augmented answers",
    "asr": "Speech to text",
    "translate": "Machine translation",
    "txt2img": "Image generation",
    "ocr": "Text recognition",
    "churn": "Churn prediction",
    "fraud": "Fraud scoring",
    "classify": "Ticket classification",
}
AUDIENCES = ("support tickets", "the mobile app", "the shop", "internal tools", "partners")
# Weighted by repetition: most services are production ones.
REALTIME_ENVS = ("prod", "prod", "prod", "staging", "staging", "dev", "canary", "test")
BATCH_ENVS = ("batch", "nightly", "backfill")
FLAVORS = (
    "modelarts.vm.cpu.2u",
    "modelarts.vm.cpu.8u",
    "modelarts.vm.gpu.t4",
    "modelarts.vm.gpu.v100",
)
FAILURE_REASONS = (
    "Instance health check failed: the model did not answer on port 8080.",
    "Insufficient resources in the public pool for the requested flavor.",
    "The model image could not be pulled.",
    "Container exited with code 137 (out of memory).",
)


class ManualClock:
    """A clock that moves only when told to, for tests and reproducible demos."""

    def __init__(self, t: float) -> None:
        self._t = float(t)

    def __call__(self) -> float:
        return self._t

    def now(self) -> float:
        return self._t

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds})")
        self._t += seconds
        return self._t

    def set(self, t: float) -> None:
        self._t = float(t)


@dataclass(frozen=True)
class ListRequest:
    """A validated ListServices query; `start` is a record index, whatever offset meant."""

    service_id: str | None = None
    service_name: str | None = None
    model_id: str | None = None
    infer_type: str | None = None
    status: str | None = None
    sort_by: str = "publish_at"
    order: str = "desc"
    start: int = 0
    limit: int = 1000


@dataclass(frozen=True, eq=False)
class Plan:
    """What one service does, in simulated ms since the fleet's start.

    `deploying` until `deployed`; `running` until `event`; then `episode` (a sequence of
    (status, length) steps), then `final` forever, or, when `period` is set, `running` again
    until the episode repeats `period` ms later.
    """

    published: int
    deployed: int
    event: int = NEVER
    episode: tuple[tuple[str, int], ...] = ()
    final: str = "running"
    period: int = 0
    # How far the first deployment gets: 100 unless it fails partway.
    progress_reached: int = 100

    @property
    def gone_at(self) -> int:
        if self.final != GONE:
            return NEVER
        return self.event + sum(length for _, length in self.episode)

    def cycle_totals(self) -> tuple[int, int]:
        """Running and concerning ms in one full period (zeros for one-shot plans)."""
        if not self.period:
            return 0, 0
        episode = sum(length for _, length in self.episode)
        concerning = sum(length for status, length in self.episode if status == "concerning")
        return self.period - episode, concerning


@dataclass(frozen=True, eq=False)
class Profile:
    """The static attributes of one service."""

    index: int
    service_id: str
    service_name: str
    model_id: str
    model_name: str
    model_version: str
    infer_type: str
    plan: Plan
    rate: float  # calls per simulated ms while running or concerning
    failure_ratio: float
    incident_failure_ratio: float
    flavor: str
    instance_count: int
    failure_reason: str
    cycle_totals: tuple[int, int]  # running and concerning ms per period
    # JSON text for nested values, parsed per item so callers never share mutable state.
    nested_json: str
    base: dict[str, Any]


Phase = tuple[str, int, int]  # status, since (simulated ms), progress


def phase_at(plan: Plan, x: int) -> Phase | None:
    """The status at simulated time x, when it began, and deploy progress; None if unlisted."""
    if x < plan.published:
        return None
    if x < plan.deployed:
        progress = (x - plan.published) * plan.progress_reached // (plan.deployed - plan.published)
        return "deploying", plan.published, progress
    if x < plan.event:
        return "running", plan.deployed, 100
    cycle_start, offset = plan.event, x - plan.event
    if plan.period:
        cycles, offset = divmod(offset, plan.period)
        cycle_start += cycles * plan.period
    position = 0
    for status, length in plan.episode:
        if offset < position + length:
            progress = (offset - position) * 100 // length if status == "deploying" else 100
            return status, cycle_start + position, progress
        position += length
    if plan.final == GONE:
        return None
    return plan.final, cycle_start + position, plan.progress_reached


def active_ms(profile: Profile, x: int) -> tuple[int, int]:
    """Simulated ms spent running and concerning up to x: the integrals behind the counters.

    Both are exact integers and non-decreasing in x, so the counters derived from them never
    go backwards, however the moments are sampled.
    """
    plan = profile.plan
    if x <= plan.deployed:
        return 0, 0
    if x < plan.event:
        return x - plan.deployed, 0
    running, concerning, offset = plan.event - plan.deployed, 0, x - plan.event
    if plan.period:
        cycles, offset = divmod(offset, plan.period)
        running += cycles * profile.cycle_totals[0]
        concerning += cycles * profile.cycle_totals[1]
    position = 0
    for status, length in plan.episode:
        if status == "concerning":
            concerning += min(max(offset - position, 0), length)
        position += length
    if plan.period:
        running += max(offset - position, 0)
    return running, concerning


# `rng.random()`-based draws: randrange() and choice() cost three times as much, which adds up
# to seconds when building a 100,000-service fleet.
def _between(rng: random.Random, low: int, high: int) -> int:
    """An int in [low, high)."""
    return low + int(rng.random() * (high - low))


def _pick(rng: random.Random, choices: tuple[Any, ...]) -> Any:
    return choices[int(rng.random() * len(choices))]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _hex32(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _published(rng: random.Random) -> int:
    # About 5% appear during the first simulated hour of the run, the rest over six weeks before.
    if rng.random() < 0.05:
        return _between(rng, SECOND, HOUR)
    return -_between(rng, 10 * MINUTE, 42 * DAY)


def _schedule(rng: random.Random) -> tuple[str, int, int]:
    """An auto-stop schedule: (time_unit, duration, length in ms)."""
    unit = _pick(rng, ("HOURS", "HOURS", "HOURS", "MINUTES", "DAYS"))
    if unit == "MINUTES":
        duration = _pick(rng, (30, 60, 90))
    else:
        duration = _between(rng, 1, 25) if unit == "HOURS" else _between(rng, 1, 4)
    return unit, duration, duration * {"MINUTES": MINUTE, "HOURS": HOUR, "DAYS": DAY}[unit]


def _flaky_plan(rng: random.Random, published: int, deployed: int) -> Plan:
    episode = [("concerning", _between(rng, 3, 16) * MINUTE)]
    if rng.random() < 0.3:
        episode += [
            ("failed", _between(rng, 2, 11) * MINUTE),
            ("concerning", _between(rng, 1, 6) * MINUTE),
        ]
    length = sum(step for _, step in episode)
    period = max(_between(rng, 20, 121) * MINUTE, length + 5 * MINUTE)
    return Plan(
        published, deployed, deployed + _between(rng, 0, period), tuple(episode), period=period
    )


def _restart_plan(rng: random.Random, published: int, deployed: int) -> Plan:
    episode = [
        ("stopping", _between(rng, 10, 31) * SECOND),
        ("pending", _between(rng, 10, 41) * SECOND),
    ]
    if rng.random() < 0.5:
        episode.append(("waiting", _between(rng, 20, 91) * SECOND))
    episode.append(("deploying", _between(rng, 60, 181) * SECOND))
    period = _between(rng, 30, 181) * MINUTE
    return Plan(
        published, deployed, deployed + _between(rng, 0, period), tuple(episode), period=period
    )


def _stop_plan(rng: random.Random, published: int, deployed: int, after: int) -> Plan:
    stopping = (("stopping", _between(rng, 10, 41) * SECOND),)
    return Plan(published, deployed, deployed + after, stopping, "stopped")


def _delete_plan(rng: random.Random, published: int, deployed: int) -> Plan:
    # Deleted between 5 minutes and 3 hours into the run, and never before being up 10 minutes.
    when = max(_between(rng, 5 * MINUTE, 3 * HOUR), deployed + 10 * MINUTE)
    return Plan(published, deployed, when, (("deleting", _between(rng, 30, 91) * SECOND),), GONE)


def _batch_plan(rng: random.Random, published: int, deployed: int) -> Plan:
    runtime = _between(rng, 5, 91) * MINUTE
    if rng.random() < 0.15:
        return Plan(published, deployed, deployed + _between(rng, MINUTE, runtime), final="failed")
    return Plan(published, deployed, deployed + runtime, final="finished")


def _realtime_plan(
    rng: random.Random, published: int, deployed: int, schedule: tuple[str, int, int] | None
) -> Plan:
    if schedule is not None:
        return _stop_plan(rng, published, deployed, schedule[2])
    roll = rng.random()
    if roll < 0.02:
        # The deployment itself fails, stuck at the progress it had reached.
        reached = _between(rng, 10, 95)
        return Plan(published, deployed, deployed, final="failed", progress_reached=reached)
    if roll < 0.03:
        return _delete_plan(rng, published, deployed)
    if roll < 0.08:
        return _stop_plan(rng, published, deployed, _between(rng, HOUR, 14 * DAY))
    if roll < 0.24:
        return _flaky_plan(rng, published, deployed)
    if roll < 0.30:
        return _restart_plan(rng, published, deployed)
    return Plan(published, deployed)


def _plan(rng: random.Random, infer_type: str, schedule: tuple[str, int, int] | None) -> Plan:
    published = _published(rng)
    deployed = published + _between(rng, 60, 181) * SECOND
    if infer_type == "batch":
        return _batch_plan(rng, published, deployed)
    if infer_type == "real-time":
        return _realtime_plan(rng, published, deployed, schedule)
    if rng.random() < 0.2:  # edge nodes mostly just run; a few get switched off
        return _stop_plan(rng, published, deployed, _between(rng, HOUR, 14 * DAY))
    return Plan(published, deployed)


def _additional_properties(rng: random.Random, project: str) -> dict[str, Any] | None:
    roll = rng.random()
    if roll < 0.10:
        return {}
    if roll < 0.15:
        # The shape terraform-provider-huaweicloud reads back from real services.
        return {
            "smn_notification": {
                "topic_urn": f"urn:smn:cn-north-4:{project}:modelarts-alerts",
                "events": [1, 2, 3],
            },
            "log_report_channels": [{"type": "LTS"}],
        }
    return None


class Fleet:
    """`size` simulated services; `items(now)` lists them as ModelArts would at `now`."""

    def __init__(
        self,
        size: int,
        seed: int = 1,
        clock: Clock = time.time,
        start: float | None = None,
        speed: float = 1.0,
    ) -> None:
        if size < 0:
            raise ValueError(f"a fleet cannot have {size} services")
        if not speed > 0:
            raise ValueError(f"speed must be positive, not {speed}")
        self.size, self.seed, self.clock, self.speed = size, seed, clock, float(speed)
        self.start = float(clock() if start is None else start)
        self._start_ms = round(self.start * 1000)
        fleet_rng = random.Random(f"{seed}:fleet")
        self.tenant, self.project = _hex32(fleet_rng), _hex32(fleet_rng)
        self.owners = tuple(_hex32(fleet_rng) for _ in range(6))
        with collector_paused():
            self._build()

    def _build(self) -> None:
        size = self.size
        self.profiles = self._profiles()
        self._index = {p.service_id: p.index for p in self.profiles}
        self._published = [p.plan.published for p in self.profiles]
        self._gone = [p.plan.gone_at for p in self.profiles]
        ids = [p.service_id for p in self.profiles]
        names = [p.service_name for p in self.profiles]
        indexes = range(size)
        # Static sort orders; service_id breaks ties so pages never overlap.
        self._by_publish = [i for *_, i in sorted(zip(self._published, ids, indexes, strict=True))]
        self._by_name = [i for *_, i in sorted(zip(names, ids, indexes, strict=True))]
        self._id_rank = [0] * size
        for rank, (_, index) in enumerate(sorted(zip(ids, indexes, strict=True))):
            self._id_rank[index] = rank
        # The moments at which a service is published or goes: between two of them the listed
        # set stays the same, so each sort order's listing is kept until the next (_listed).
        self._moments = sorted({*self._published, *(g for g in self._gone if g != NEVER)})
        self._listings: dict[str, tuple[int, list[int]]] = {}
        # Made with the fleet, not on first listing: the first poll of a big fleet would pay.
        self._texts = [self._static_texts(profile) for profile in self.profiles]

    def _profiles(self) -> tuple[Profile, ...]:
        names: dict[str, int] = {}
        return tuple(self._profile(index, names) for index in range(self.size))

    def _profile(self, index: int, names: dict[str, int]) -> Profile:
        rng = random.Random(f"{self.seed}:{index}")
        service_id, model_id = _uuid(rng), _uuid(rng)
        roll = rng.random()
        infer_type = "batch" if roll < 0.2 else "edge" if roll < 0.23 else "real-time"
        family, tasks = _pick(rng, FAMILIES)
        task = _pick(rng, tasks)
        env = _pick(rng, {"batch": BATCH_ENVS, "edge": ("edge",)}.get(infer_type, REALTIME_ENVS))
        schedule = _schedule(rng) if infer_type == "real-time" and rng.random() < 0.04 else None
        plan = _plan(rng, infer_type, schedule)
        nested: dict[str, Any] = {}
        if schedule is not None:
            nested["schedule"] = [
                {"type": "stop", "time_unit": schedule[0], "duration": schedule[1]}
            ]
        properties = _additional_properties(rng, self.project)
        if properties is not None:
            nested["additional_properties"] = properties
        description = f"{TASK_TEXT[task]} for {_pick(rng, AUDIENCES)} ({env})"
        static = {
            "service_id": service_id,
            "service_name": self._unique_name(f"{family}-{task}-{env}", names, rng),
            "description": "" if rng.random() < 0.3 else description,
            "infer_type": infer_type,
        }
        return Profile(
            index=index,
            service_id=service_id,
            service_name=static["service_name"],
            model_id=model_id,
            model_name=f"{family}-{task}",
            model_version=f"1.{_between(rng, 0, 5)}.{_between(rng, 0, 10)}",
            infer_type=infer_type,
            plan=plan,
            rate=10 ** rng.uniform(-2, math.log10(50)) / 1000,
            failure_ratio=rng.uniform(0, 0.01) if rng.random() < 0.9 else rng.uniform(0.02, 0.1),
            incident_failure_ratio=rng.uniform(0.2, 0.6),
            flavor=_pick(rng, FLAVORS),
            instance_count=_between(rng, 1, 5),
            failure_reason=_pick(rng, FAILURE_REASONS),
            cycle_totals=plan.cycle_totals(),
            nested_json=json.dumps(nested) if nested else "",
            base=self._base(rng, static, plan, nested),
        )

    def _base(
        self, rng: random.Random, static: dict[str, Any], plan: Plan, nested: dict[str, Any]
    ) -> dict[str, Any]:
        """The item's static fields, with None where per-moment values go, in documented order."""
        is_shared = rng.random() < 0.03
        base: dict[str, Any] = {
            **{key: static[key] for key in ("service_id", "service_name", "description")},
            "tenant": self.tenant,
            "project": self.project,
            "owner": _pick(rng, self.owners),
            "publish_at": self.wall_ms(plan.published),
            "infer_type": static["infer_type"],
            "workspace_id": WORKSPACE_ID,
            "status": None,
            "progress": None,
            "invocation_times": None,
            "failed_times": None,
            "is_shared": is_shared,
            "shared_count": _between(rng, 1, 13) if is_shared else 0,
        }
        if "schedule" in nested:
            base.update(schedule=None, due_time=self.wall_ms(plan.event))
        if static["infer_type"] == "batch":
            base.update(start_time=None, finished_time=None)
        base.update(
            operation_time=None,
            transition_at=None,
            is_opened_sample_collection=rng.random() < 0.1,
            is_free=rng.random() < 0.05,
        )
        if "additional_properties" in nested:
            base["additional_properties"] = None
        return base

    @staticmethod
    def _unique_name(name: str, names: dict[str, int], rng: random.Random) -> str:
        # Bases never end in a digit, so "-2" or "-02" suffixes cannot collide with a base.
        count = names.get(name, 0) + 1
        names[name] = count
        if count == 1:
            return name
        return f"{name}-{count:02d}" if rng.random() < 0.5 else f"{name}-{count}"

    def wall_ms(self, simulated: int) -> int:
        """Epoch ms of a moment given in simulated ms since start."""
        return self._start_ms + round(simulated / self.speed)

    def elapsed_ms(self, now: float) -> int:
        """Simulated ms since start at wall time `now` (floored, so monotonic in `now`)."""
        return math.floor((now - self.start) * self.speed * 1000)

    def _now(self, now: float | None) -> float:
        return self.clock() if now is None else now

    def items(self, now: float | None = None) -> list[dict[str, Any]]:
        """Every listed service as a ModelArts ListServices item, in fleet order."""
        now = self._now(now)
        x, now_ms = self.elapsed_ms(now), math.floor(now * 1000)
        items = []
        with collector_paused():
            for index, profile in enumerate(self.profiles):
                phase = phase_at(profile.plan, x)
                if phase is not None:
                    items.append(self._item(index, phase, x, now_ms))
        return items

    def item(self, index: int, now: float | None = None) -> dict[str, Any] | None:
        """Service `index` as a list item, or None while it is not listed."""
        now = self._now(now)
        profile, x = self.profiles[index], self.elapsed_ms(now)
        phase = phase_at(profile.plan, x)
        return None if phase is None else self._item(index, phase, x, math.floor(now * 1000))

    def index_of(self, service_id: str) -> int | None:
        return self._index.get(service_id)

    def model_id(self, index: int) -> str:
        return self.profiles[index].model_id

    def _item(self, index: int, phase: Phase, x: int, now_ms: int) -> dict[str, Any]:
        """Service `index` as a list item: its JSON text (see _item_text), read back, so the
        item has one definition however it is served."""
        return json.loads(self._item_text(index, phase, x, now_ms))

    def show(self, service_id: str, now: float | None = None) -> dict[str, Any] | None:
        """The ShowService body for one service, or None if it is not listed now."""
        index = self.index_of(service_id)
        item = None if index is None else self.item(index, now)
        if item is None:
            return None
        profile = self.profiles[index]
        item["update_time"] = item["transition_at"]
        if item["infer_type"] == "real-time" and item["status"] in ("running", "concerning"):
            # A reserved .invalid host: nothing should ever try to call a simulated service.
            item["access_address"] = f"https://infer-modelarts.sim.invalid/v1/infers/{service_id}"
        if item["status"] == "failed":
            item["error_msg"] = profile.failure_reason
        item["config"] = [self._config(profile, item["status"])]
        return item

    @staticmethod
    def _config(profile: Profile, status: str) -> dict[str, Any]:
        ready = status in ("running", "concerning", "finished")
        return {
            "model_id": profile.model_id,
            "model_name": profile.model_name,
            "model_version": profile.model_version,
            "specification": profile.flavor,
            "weight": 100,
            "instance_count": profile.instance_count,
            "status": "ready" if ready else "notReady",
            "scaling": False,
            "envs": {},
            "support_debug": False,
        }

    def select(
        self, query: ListRequest, now: float | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """ListServices: (total_count, the page of items) for a validated query."""
        total, page, x, now_ms = self._page(query, now)
        return total, [self._item(i, phase, x, now_ms) for i, phase in page]

    def select_body(self, query: ListRequest, now: float | None = None) -> bytes:
        """select's answer as the JSON body ListServices sends, byte for byte, made faster.

        Each item's text is its static parts, encoded once per service, around the values of
        the moment: encoding 1,000 whole items per page made the simulator slower than a
        100,000-service poll reading it.
        """
        total, page, x, now_ms = self._page(query, now)
        items = ",".join(self._item_text(i, phase, x, now_ms) for i, phase in page)
        return f'{{"total_count":{total},"count":{len(page)},"services":[{items}]}}'.encode()

    def _page(
        self, query: ListRequest, now: float | None
    ) -> tuple[int, list[tuple[int, Phase]], int, int]:
        """(total_count, the page's services and their phases, x, now in epoch ms)."""
        now = self._now(now)
        x = self.elapsed_ms(now)
        indexes = self._candidates(query, x)
        phases: dict[int, Phase] = {}
        if query.status is not None or query.sort_by == "transition_at":
            with collector_paused():
                indexes, phases = self._by_phase(indexes, query, x)
        if query.order == "desc":
            indexes = indexes[::-1]
        page = []
        for index in indexes[query.start : query.start + query.limit]:
            phase = phases.get(index) or phase_at(self.profiles[index].plan, x)
            if phase is not None:  # always true: _candidates kept only listed services
                page.append((index, phase))
        return len(indexes), page, x, math.floor(now * 1000)

    def _item_text(self, index: int, phase: Phase, x: int, now_ms: int) -> str:
        """Service `index` as a ListServices item, in compact JSON: its static parts, encoded
        once per service, around the values of the moment."""
        profile = self.profiles[index]
        head, middle, tail = self._texts[index]
        status, since, progress = phase
        running, concerning = active_ms(profile, x)
        failing = profile.failure_ratio * running + profile.incident_failure_ratio * concerning
        batch = ""
        if profile.infer_type == "batch":
            if status != "deploying":
                batch += f',"start_time":{self.wall_ms(profile.plan.deployed)}'
            if status == "finished":
                batch += f',"finished_time":{self.wall_ms(profile.plan.event)}'
        return (
            f'{head}{json.dumps(status)},"progress":{progress},'
            f'"invocation_times":{int(profile.rate * (running + concerning))},'
            f'"failed_times":{int(profile.rate * failing)}{middle}{batch},'
            f'"operation_time":{now_ms},"transition_at":{self.wall_ms(since)}{tail}'
        )

    @staticmethod
    def _static_texts(profile: Profile) -> tuple[str, str, str]:
        """The JSON of an item's keys before status, between failed_times and the batch times,
        and after transition_at."""
        item = dict(profile.base)
        if profile.nested_json:
            item.update(json.loads(profile.nested_json))
        keys = list(item)
        after_counters = keys.index("failed_times") + 1
        moments = ("start_time", "finished_time", "operation_time")
        first_moment = min(keys.index(key) for key in moments if key in item)

        def members(names: list[str]) -> str:
            return json.dumps({name: item[name] for name in names}, separators=(",", ":"))[1:-1]

        head = "{" + members(keys[: keys.index("status")]) + ',"status":'
        middle = members(keys[after_counters:first_moment])
        tail = members(keys[keys.index("transition_at") + 1 :])
        return head, f",{middle}" if middle else "", f",{tail}}}" if tail else "}"

    def _candidates(self, query: ListRequest, x: int) -> list[int]:
        """Listed services matching the static filters, in ascending sort order."""
        if query.service_id is not None:
            found = self._index.get(query.service_id)
            listed = found is not None and self._published[found] <= x < self._gone[found]
            indexes = [found] if listed else []
        elif query.sort_by == "service_name":
            indexes = self._listed("name", self._by_name, x)
        else:
            indexes = self._listed("publish", self._by_publish, x)
        profiles = self.profiles
        if query.model_id is not None:
            indexes = [i for i in indexes if profiles[i].model_id == query.model_id]
        if query.infer_type is not None:
            indexes = [i for i in indexes if profiles[i].infer_type == query.infer_type]
        if query.service_name is not None:
            # Real matching is undocumented; a case-insensitive substring is the kind guess.
            needle = query.service_name.casefold()
            indexes = [i for i in indexes if needle in profiles[i].service_name.casefold()]
        return indexes

    def _listed(self, name: str, order: list[int], x: int) -> list[int]:
        """`order` cut to the services listed at x; callers must not change the list.

        Kept until the next moment a service is published or goes: rescanning the whole fleet
        for every page made serving a 100,000-service fleet slower than polling it.
        """
        era = bisect.bisect_right(self._moments, x)
        kept = self._listings.get(name)
        if kept is not None and kept[0] == era:
            return kept[1]
        published, gone = self._published, self._gone
        listed = [i for i in order if published[i] <= x < gone[i]]
        self._listings[name] = (era, listed)
        return listed

    def _by_phase(
        self, indexes: list[int], query: ListRequest, x: int
    ) -> tuple[list[int], dict[int, Phase]]:
        profiles = self.profiles
        phases: dict[int, Phase] = {}
        for index in indexes:
            phase = phase_at(profiles[index].plan, x)
            if phase is not None and (query.status is None or phase[0] == query.status):
                phases[index] = phase
        kept = list(phases)
        if query.sort_by == "transition_at":
            size, rank = max(self.size, 1), self._id_rank
            # One int per row sorts much faster than (since, service_id) tuples at 100k rows.
            kept.sort(key=lambda i: phases[i][1] * size + rank[i])
        return kept, phases
