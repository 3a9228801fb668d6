"""A fake ModelArts service-list API: a deterministic, evolving fleet served over real HTTP."""

from __future__ import annotations

from dashboard.simulator.fleet import Fleet, ListRequest, ManualClock
from dashboard.simulator.server import SimulatorServer

__all__ = ["Fleet", "ManualClock", "ListRequest", "SimulatorServer"]
