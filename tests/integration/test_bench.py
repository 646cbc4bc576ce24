"""Smoke test of the benchmark (bench/): its measuring function at a tiny size.

No timing is asserted (that is what `python -m bench` reports); only that every part
runs, the result has its shape, single flight holds and no child process is left.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) leaves the root out
    sys.path.insert(0, str(ROOT))

from bench.measure import measure_size  # noqa: E402
from bench.plan import VARIANTS, Plan  # noqa: E402
from bench.report import growth, table, targets  # noqa: E402

TINY = Plan(
    hot_scrapes=5,
    hot_budget_s=1.0,
    new_seconds=2,
    cold_scrapes=1,
    scrapers=50,
    windows=1,
    concurrency_budget_s=5.0,
    naive_scrapes=1,
    naive_budget_s=5.0,
    start_timeout_s=20.0,
)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


def test_the_benchmark_measures_a_tiny_fleet() -> None:
    before = set(children_of(os.getpid()))
    result = measure_size(200, TINY, log=lambda _: None)

    assert result["instances"] == 200
    for variant in VARIANTS:
        for side in ("hot", "limit"):
            measured = result[side][variant]
            assert measured["n"] >= 3
            assert positive(measured["p50_ms"])
            assert measured["p95_ms"] >= measured["p50_ms"]
            assert measured["cpu_ms_per_scrape"] >= 0
        assert positive(result["hot_new_second"][variant]["p50_ms"])
        assert positive(result["ratio_ours_over_limit"][variant])
        assert positive(result["ratio_new_second_over_limit"][variant])
        assert result["body_bytes"][variant] > 0
    assert result["body_bytes"]["openmetrics+gzip"] < result["body_bytes"]["openmetrics"]
    assert positive(result["ratio_naive_over_ours"])

    cold = result["cold"]
    assert cold["n"] == 1 and positive(cold["p50_s"])
    assert cold["all_cold"] and cold["failed_refreshes"] == 0

    # Single flight: 50 scrapers at once after the TTL, one upstream listing per window.
    burst = result["concurrency"]
    assert burst["bursts"] == 1 and burst["failures"] == 0
    assert burst["listings"] == burst["attempts_seen"] >= 1
    assert burst["failed_refreshes"] == 0
    assert burst["listings_per_window"] == 1
    assert burst["exactly_one_per_window"]

    for phase in ("hot", "refreshes", "bursts"):
        assert positive(result["rss_mb"][phase]["peak"])
    assert positive(result["naive"]["rss_mb"]["peak"])

    # The report functions accept the result; every child process has been ended.
    assert "200" in table([result])
    assert growth([result]) == []
    assert any(t["status"] == "met" for t in targets([result]))
    assert set(children_of(os.getpid())) <= before
