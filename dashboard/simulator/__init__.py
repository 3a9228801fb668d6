"""A fake ModelArts service-list API: a deterministic, evolving fleet served over real HTTP."""

from __future__ import annotations

from dashboard.simulator.faults import Fault
from dashboard.simulator.fleet import Fleet, ListRequest, ManualClock
from dashboard.simulator.server import RequestRecord, SimulatorServer

__all__ = ["Fault", "Fleet", "ManualClock", "ListRequest", "RequestRecord", "SimulatorServer"]
