"""A fake ModelArts service-list API: a deterministic, evolving fleet served over real HTTP."""

from __future__ import annotations

from dashboard.simulator.fleet import Fleet, ManualClock, ServiceQuery
from dashboard.simulator.server import SimulatorServer

__all__ = ["Fleet", "ManualClock", "ServiceQuery", "SimulatorServer"]
