"""Fleet.churn: a share of a standing fleet changed at once (the benchmark's "5% changed")."""

from __future__ import annotations

import json

from exporter.simulator import Fleet
from exporter.simulator.pages import Pages

NOW = 1_800_000_000.0


def fleet(size: int = 400, seed: int = 3) -> Fleet:
    return Fleet(size=size, seed=seed, clock=lambda: NOW, evolve=False)


def statuses(f: Fleet) -> dict[str, tuple[str, float]]:
    return {nb.id: (nb.status, nb.updated) for nb in f.notebooks}


def test_churn_flips_the_asked_share_and_bumps_the_version() -> None:
    f = fleet()
    before = statuses(f)
    version = f.version

    changed = f.churn(0.05, now=NOW + 60)

    assert changed == 20  # 5 % of 400
    assert f.version == version + 1
    after = statuses(f)
    moved = {i for i in before if before[i] != after[i]}
    assert len(moved) == changed
    for i in moved:
        assert {before[i][0], after[i][0]} == {"RUNNING", "STOPPED"}
        assert after[i][1] == NOW + 60
    assert not any(nb.exhibit for nb in f.notebooks if nb.id in moved)


def test_churn_is_deterministic_and_differs_from_one_churn_to_the_next() -> None:
    a, b = fleet(), fleet()
    first = statuses(a)
    a.churn(0.1, now=NOW)
    b.churn(0.1, now=NOW)
    assert statuses(a) == statuses(b)
    second = statuses(a)
    a.churn(0.1, now=NOW)
    third = statuses(a)
    changed_first = {i for i in first if first[i] != second[i]}
    changed_second = {i for i in second if second[i] != third[i]}
    assert changed_first != changed_second


def test_nothing_to_change_changes_nothing() -> None:
    f = fleet(size=20)
    version = f.version
    assert f.churn(0.0) == 0
    assert f.version == version
    # More than there are RUNNING or STOPPED notebooks: all of them, no more.
    eligible = sum(not nb.exhibit and nb.status in ("RUNNING", "STOPPED") for nb in f.notebooks)
    assert f.churn(1.0) == eligible


def test_the_pages_serve_the_churned_fleet() -> None:
    f = fleet()
    pages = Pages(f, lambda: NOW)
    params = {"de_type": "Notebook", "show_self": "false"}

    def listed() -> dict[str, str]:
        status, body = pages.demanager(params)
        assert status == 200
        return {r["id"]: r["status"] for r in json.loads(body)["instances"]}

    def listed_v2() -> dict[str, str]:
        found: dict[str, str] = {}
        while True:
            params_v2 = {"limit": "50", "offset": str(len(found))}
            status, body = pages.notebooks(params_v2, every_user=True)
            assert status == 200
            page = json.loads(body)["data"]
            found |= {r["id"]: r["status"] for r in page}
            if len(page) < 50:
                return found

    before, before_v2 = listed(), listed_v2()
    changed = f.churn(0.05, now=NOW)
    after, after_v2 = listed(), listed_v2()
    assert sum(before[i] != after[i] for i in before) == changed
    assert sum(before_v2[i] != after_v2[i] for i in before_v2) == changed
