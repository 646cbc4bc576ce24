"""What the exporter should export from a simulator, computed from the simulator's fleet.

With the default `--api auto` and `--show-self` off, the exporter lists the historical
API's notebooks and the newer API's (every user's, both features) of workspace "0", and
counts a notebook both list once, under its historical `DE-` id (docs/targets.md).
"""

from __future__ import annotations

from exporter.simulator import Simulator


def exported_ids(sim: Simulator, api: str = "auto") -> set[str]:
    historical = {r["id"] for r in sim.fleet.records() if r["workspace"]["id"] == "0"}
    if api == "demanager":
        return historical
    newer = {r["id"] for r in sim.fleet.records_v2() if r["workspace_id"] == "0"}
    if api == "notebooks":
        return newer
    return historical | {i for i in newer if f"DE-{i}" not in historical}
