"""A fake ModelArts service-list API: a deterministic, evolving fleet served over real HTTP."""

from __future__ import annotations

from dashboard.devtools.simulator.faults import Fault
from dashboard.devtools.simulator.fleet import Fleet, ListRequest, ManualClock
from dashboard.devtools.simulator.server import RequestRecord, SimulatorServer

__all__ = ["Fault", "Fleet", "ManualClock", "ListRequest", "RequestRecord", "SimulatorServer"]
