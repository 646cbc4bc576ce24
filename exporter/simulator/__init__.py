"""A ModelArts list API on loopback with a living fleet: for `--demo`, tests and benchmarks."""

from exporter.simulator.api import DEMO_AK, DEMO_PROJECT_ID, DEMO_SK, Fault, Simulator
from exporter.simulator.fleet import Fleet

__all__ = ["DEMO_AK", "DEMO_PROJECT_ID", "DEMO_SK", "Fault", "Fleet", "Simulator"]
