"""A fleet standing still (the benchmark's) still has its clocks moving: the historical
API recomputes `remain_time` at every listing (vendor example list-instances.json gives
it beside `stop_timestamp`), so a simulator that froze it would hide what that costs."""

from __future__ import annotations

import json

from exporter.simulator import Fleet
from exporter.simulator.pages import Pages

NOW = 1_800_000_000.0
PARAMS = {"de_type": "Notebook", "show_self": "false", "offset": "0", "limit": "0"}


def remain_times(pages: Pages) -> dict[str, int]:
    status, body = pages.demanager(PARAMS)
    assert status == 200
    return {
        r["id"]: r["spec"]["auto_stop"]["remain_time"]
        for r in json.loads(body)["instances"]
        if "remain_time" in (r["spec"].get("auto_stop") or {})
    }


def test_remain_time_goes_down_while_the_fleet_stands_still():
    clock = [NOW]
    pages = Pages(Fleet(size=200, seed=5, clock=lambda: clock[0], evolve=False), lambda: clock[0])
    before = remain_times(pages)
    clock[0] += 42
    after = remain_times(pages)
    assert before and before.keys() == after.keys()
    assert all(after[i] == max(0, before[i] - 42) for i in before)
    assert any(after[i] != before[i] for i in before)
