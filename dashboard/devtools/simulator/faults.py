"""Ways the service-list API and the per-service APIs misbehave, injected per request or at
random.

A fault is written as `KIND[:ARG[,ARG...]]`, an ARG being a number (the kind's main value), a
`name=number` pair or a flag:

    latency[:SECONDS]              answer normally after SECONDS (default 1)
    timeout[:SECONDS]              say nothing for SECONDS (default and maximum 30), then hang up
    500 | 502 | 503 | 504[:retry-after=SECONDS]
                                   ModelArts.3505 / 4302 / 4700 / 4503 error bodies
    429[:SECONDS][,gateway]        Retry-After SECONDS (default 1); ModelArts.4206, or the API
                                   gateway's APIGW.0308 with `gateway`
    html-502                       a proxy's HTML 502 page instead of JSON
    malformed-json[:garbage]       a 200 cut mid-object, or with garbage after the JSON
    truncated                      a Content-Length longer than the body, then the line drops
    wrong-types                    the first four items get one defect each: counts as words,
                                   status as a number, no service_id, workspace_id an object
    total-count-drift[:DELTA]      total_count off by DELTA (default 5; may be negative)
    duplicate-ids[:N]              the page starts N items early (default half a page), so it
                                   repeats the end of the page before and loses its own end

The last three bend a service list and only ever apply to list requests. Every other kind can
hit any API: a queued fault names the APIs it is for (`inject(..., api="monitor")`; "list" by
default), and a random fault hits every API it can.
"""

from __future__ import annotations

import dataclasses
import random
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dashboard.devtools.simulator.fleet import ListRequest
from dashboard.devtools.simulator.wire import ApiError, Reply, encode

# Whatever a client's timeout, a held connection is let go within this many seconds.
MAX_HOLD = 30.0
# The APIs a fault can be aimed at: the list, then ShowService and the per-service APIs.
APIS = ("list", "show", "events", "monitor", "logs")
DETAIL_APIS = APIS[1:]
# inject()'s names for several APIs at once.
API_GROUPS = {"detail": frozenset(DETAIL_APIS), "any": frozenset(APIS)}
LIST_ONLY = frozenset({"wrong-types", "total-count-drift", "duplicate-ids"})
# What a 500 of a per-service API says (ModelArts.3508 is the monitor API's own, API.md §1.6).
DETAIL_500 = {
    "monitor": ("ModelArts.3508", "Failed to query the service's monitoring information."),
}
DETAIL_500_DEFAULT = ("ModelArts.3505", "Failed to query the service.")
ERRORS = {
    "500": ("ModelArts.3505", "Failed to query the service list."),
    "502": ("ModelArts.4302", "The gateway failed to forward the request."),
    "503": ("ModelArts.4700", "The gateway is stopping for an upgrade; try again later."),
    "504": ("ModelArts.4503", "The backend timed out."),
}
# kind → (name of its main value, default, other parameters, flags)
KINDS: dict[str, tuple[str | None, float | None, tuple[str, ...], tuple[str, ...]]] = {
    "latency": ("seconds", 1.0, (), ()),
    "timeout": ("hold", MAX_HOLD, (), ()),
    **dict.fromkeys(ERRORS, (None, None, ("retry-after",), ())),
    "429": ("retry-after", 1.0, (), ("gateway",)),
    "html-502": (None, None, (), ()),
    "malformed-json": (None, None, (), ("garbage", "cut")),
    "truncated": (None, None, (), ()),
    "wrong-types": (None, None, (), ()),
    "total-count-drift": ("by", 5, (), ()),
    "duplicate-ids": ("count", None, (), ()),
}
INTEGER_VALUES = ("by", "count")
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
INTEGER = re.compile(r"[+-]?\d+")
NGINX_502 = b"""<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx</center>
</body>
</html>
"""


@dataclass(frozen=True)
class Fault:
    """One misbehaviour; `Fault.parse("429:retry-after=2")` reads the written form."""

    kind: str
    seconds: float = 0.0  # latency: the delay; timeout: how long to hold the connection
    retry_after: float | None = None  # 429 and 5xx: the Retry-After header
    gateway: bool = False  # 429: the API gateway's body instead of ModelArts'
    garbage: bool = False  # malformed-json: trailing garbage instead of a cut
    by: int = 0  # total-count-drift: added to total_count
    count: int | None = None  # duplicate-ids: items repeated from the page before

    @classmethod
    def parse(cls, spec: str) -> Fault:
        kind, _, rest = spec.strip().partition(":")
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}: use one of {', '.join(KINDS)}")
        main, default, names, flags = KINDS[kind]
        values: dict[str, Any] = {} if main is None or default is None else {main: default}
        for arg in filter(None, (part.strip() for part in rest.split(","))):
            name, equals, value = arg.partition("=")
            if not equals and NUMBER.fullmatch(arg) and main is not None:
                name, value = main, arg
            elif not equals and name in flags:
                values[name] = True
                continue
            number = INTEGER if name in INTEGER_VALUES else NUMBER
            if name not in (main, *names) or not number.fullmatch(value):
                raise ValueError(f"fault {spec!r}: cannot read {arg!r} ({cls._usage(kind)})")
            values[name] = int(value) if name in INTEGER_VALUES else float(value)
        return cls._build(spec, kind, values)

    @classmethod
    def _build(cls, spec: str, kind: str, values: dict[str, Any]) -> Fault:
        seconds = values.get("seconds", values.get("hold", 0.0))
        retry_after = values.get("retry-after")
        if seconds < 0 or (retry_after is not None and retry_after < 0):
            raise ValueError(f"fault {spec!r}: times cannot be negative")
        if kind == "timeout" and seconds > MAX_HOLD:
            raise ValueError(f"fault {spec!r}: a timeout holds at most {MAX_HOLD:g} s")
        if values.get("count") is not None and values["count"] < 1:
            raise ValueError(f"fault {spec!r}: repeat at least one item")
        return cls(
            kind,
            seconds=seconds,
            retry_after=retry_after,
            gateway=values.get("gateway", False),
            garbage=values.get("garbage", False),
            by=values.get("by", 0),
            count=values.get("count"),
        )

    @staticmethod
    def _usage(kind: str) -> str:
        main, _, names, flags = KINDS[kind]
        accepted = [f"{main}=N or N"] if main else []
        accepted += [f"{name}=N" for name in names] + list(flags)
        return f"{kind} takes " + (", ".join(accepted) if accepted else "no arguments")

    def applies_to(self, api: str) -> bool:
        return api == "list" or self.kind not in LIST_ONLY

    def __str__(self) -> str:
        args: list[str] = []
        if self.kind in ("latency", "timeout"):
            args.append(f"{self.seconds:g}")
        if self.retry_after is not None:
            args.append(f"retry-after={self.retry_after:g}")
        if self.kind == "total-count-drift":
            args.append(f"{self.by:+d}")
        if self.count is not None:
            args.append(str(self.count))
        args += [flag for flag in ("gateway", "garbage") if getattr(self, flag)]
        return self.kind + (":" + ",".join(args) if args else "")


def as_fault(fault: Fault | str) -> Fault:
    return fault if isinstance(fault, Fault) else Fault.parse(fault)


def apis_named(api: str) -> frozenset[str]:
    """The APIs `api` names: one of APIS, or "detail" (every per-service API) or "any"."""
    if api in APIS:
        return frozenset({api})
    if api in API_GROUPS:
        return API_GROUPS[api]
    raise ValueError(f"unknown API {api!r}: use one of {', '.join((*APIS, *API_GROUPS))}")


@dataclass
class _Queued:
    fault: Fault
    times: int
    page: int | None
    apis: frozenset[str]


class FaultPlan:
    """The faults still to come: queued ones first, then random ones, drawn from a seed."""

    def __init__(self, random_faults: Sequence[tuple[Fault, float]] = (), seed: int = 0) -> None:
        for fault, probability in random_faults:
            if not 0 <= probability <= 1:
                raise ValueError(f"probability of {fault} must be between 0 and 1")
        self._random = tuple(random_faults)
        self._rng = random.Random(f"{seed}:faults")
        self._queue: list[_Queued] = []
        self._lock = threading.Lock()

    def inject(
        self, fault: Fault | str, times: int = 1, page: int | None = None, api: str = "list"
    ) -> Fault:
        if times < 1:
            raise ValueError(f"inject a fault at least once, not {times} times")
        fault = as_fault(fault)
        apis = apis_named(api)
        if not all(fault.applies_to(name) for name in apis):
            raise ValueError(f"{fault} bends a service list; it cannot hit {api} requests")
        with self._lock:
            self._queue.append(_Queued(fault, times, page, apis))
        return fault

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def take(self, page: int | None, api: str = "list") -> Fault | None:
        """The fault for a request to `api` (for `page`, if it is paged), if any; each call uses
        one up. A fault queued for a page never hits a request that has none."""
        # Checked without the lock: with no faults configured this is all a request pays.
        if not self._queue and not self._random:
            return None
        with self._lock:
            for queued in self._queue:
                if api in queued.apis and (queued.page is None or queued.page == page):
                    queued.times -= 1
                    if not queued.times:
                        self._queue.remove(queued)
                    return queued.fault
            # One draw per random fault that can hit this request, so a seed replays the same
            # faults (and list requests draw exactly as they did before other APIs had faults).
            for fault, probability in self._random:
                if fault.applies_to(api) and self._rng.random() < probability:
                    return fault
        return None


Select = Callable[[ListRequest], tuple[int, list[dict[str, Any]]]]


def faulty_reply(fault: Fault, query: ListRequest, select: Select, request_id: str) -> Reply:
    """The list API's answer to `query`, bent by `fault`."""
    kind = fault.kind
    unanswered = _instead_of_answer(fault, request_id, "list")
    if unanswered is not None:
        return unanswered
    shift = 0
    if kind == "duplicate-ids":
        shift = min(query.start, fault.count or max(1, query.limit // 2))
        query = dataclasses.replace(query, start=query.start - shift)
    total, items = select(query)
    if kind == "duplicate-ids" and not shift:
        # The first page has no page before it: repeat its own head in place of its tail.
        repeat = min(fault.count or max(1, len(items) // 2), len(items) // 2)
        items = items[: len(items) - repeat] + items[:repeat] if repeat else items
    if kind == "total-count-drift":
        total = max(0, total + fault.by)
    if kind == "wrong-types":
        items = _wrong_types(items)
    return _bent(fault, encode({"total_count": total, "count": len(items), "services": items}))


def faulty_detail_reply(fault: Fault, api: str, body: Any, request_id: str) -> Reply:
    """A per-service API's answer `body` (ShowService's for api "show"), bent by `fault`."""
    if not fault.applies_to(api):
        raise ValueError(f"{fault} cannot hit {api} requests")
    unanswered = _instead_of_answer(fault, request_id, api)
    return unanswered if unanswered is not None else _bent(fault, encode(body))


def _instead_of_answer(fault: Fault, request_id: str, api: str) -> Reply | None:
    """What a fault sends instead of the API's answer, if it replaces it."""
    if fault.kind == "timeout":
        return Reply(0, b"", hold=fault.seconds)
    if fault.kind == "html-502":
        return Reply(502, NGINX_502, content_type="text/html")
    if fault.kind in ERRORS or fault.kind == "429":
        return _error(fault, request_id, api)
    return None


def _bent(fault: Fault, data: bytes) -> Reply:
    """A 200 carrying `data`, delivered as the fault says: late, cut, or with garbage."""
    kind = fault.kind
    if kind == "malformed-json":
        data = data + b"\n<EOF>garbage" if fault.garbage else data[: len(data) // 2]
    if kind == "truncated":
        return Reply(200, data, truncate_to=len(data) // 2)
    return Reply(200, data, delay=fault.seconds if kind == "latency" else 0.0)


def _error(fault: Fault, request_id: str, api: str = "list") -> Reply:
    if fault.kind == "429":
        error = (
            ApiError(
                429,
                "APIGW.0308",
                "The throttling threshold has been reached: policy user over ratelimit, "
                "limit:5, time:1 second",
                gateway=True,
            )
            if fault.gateway
            else ApiError(429, "ModelArts.4206", "Too many requests to this API; slow down.")
        )
    elif fault.kind == "500" and api != "list":
        error = ApiError(500, *DETAIL_500.get(api, DETAIL_500_DEFAULT))
    else:
        error = ApiError(int(fault.kind), *ERRORS[fault.kind])
    reply = error.reply(request_id)
    if fault.retry_after is not None:
        # Whole seconds are HTTP's form; fractions are for tests that must not wait.
        reply.headers["Retry-After"] = f"{fault.retry_after:g}"
    return reply


def _wrong_types(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One type defect on each of the first four items, the kinds the API's docs hint at."""
    # select() builds fresh dicts for every request, so changing them in place is safe.
    for position, item in enumerate(items[:4]):
        if position == 0:
            item.update(invocation_times="lots", failed_times="a few")
        elif position == 1:
            item["status"] = 1
        elif position == 2:
            del item["service_id"]
        else:
            item["workspace_id"] = {"id": "0"}
    return items
