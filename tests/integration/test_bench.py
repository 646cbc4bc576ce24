"""Smoke test of the benchmark (bench/): its measuring functions at a tiny size, and its
targets on made-up results.

No timing is asserted (that is what `python -m bench` reports); only that every part
runs, the result has its shape, single flight holds and no child process is left.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) leaves the root out
    sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402

from bench.fetch import Downloader  # noqa: E402
from bench.many import run_many  # noqa: E402
from bench.measure import measure_size  # noqa: E402
from bench.plan import VARIANTS, Plan  # noqa: E402
from bench.report import growth, many_markdown, many_table, table, targets  # noqa: E402
from exporter.modelarts.auth.aksk import AkSkProvider  # noqa: E402
from exporter.modelarts.client import ModelArtsClient  # noqa: E402
from exporter.simulator import DEMO_AK, DEMO_PROJECT_ID, DEMO_SK, Fleet, Simulator  # noqa: E402

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
    fetch_repeats=1,
    churn_scrapes=1,
    churn_budget_s=5.0,
    many_targets=3,
    many_instances=200,
    many_ttl_s=1.0,
    many_interval_s=1.0,
    many_duration_s=4.0,
    many_start_timeout_s=30.0,
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

    # The fetch floor downloads what a refresh reads; cold scrapes after 5 % changed.
    fetch = result["fetch"]
    assert positive(fetch["median_s"]) and fetch["requests"] > 0 and fetch["bytes"] > 0
    assert len(fetch["before_s"]) == len(fetch["after_s"]) == 1
    churn = result["churn"]
    assert churn["n"] == 1 and churn["changed"] == [10]  # 5 % of 200
    assert churn["all_cold"] and churn["failed_refreshes"] == 0
    for part in (cold, churn):
        assert part["minus_fetch_p50_s"] == part["p50_s"] - fetch["median_s"]
        assert part["cpu_s_per_scrape"] >= 0

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


def test_the_benchmark_runs_many_targets_in_one_process() -> None:
    before = set(children_of(os.getpid()))
    # A budget of 1 s: the slow target's refresh takes 1.5 s.
    many = run_many(TINY, log=lambda _: None, exporter_args=("--refresh-budget", "1"))

    assert many["targets"] == 3 and many["slow_targets"] == 1
    assert many["failures"] == 0 and many["scrapes"]["n"] >= 2 and many["probes"]["n"] >= 2
    assert many["first_refresh"]["all_s"] >= many["first_refresh"]["fast_s"] > 0
    assert positive(many["rss_mb"]["peak"]) and many["cpu"]["seconds"] >= 0
    assert many["fast"]["always_up"] and many["slow"]["always_up"]
    assert many["slow"]["refresh_over_budget"]  # slowed past the budget, and still up
    assert many["fast"]["refreshes_min"] >= 1
    assert sum(many["listings"].values()) >= 3
    assert "3 targets of 200 notebooks" in "\n".join(many_table(many))
    assert "**3 projects" in many_markdown(many)[0]
    statuses = {t["target"].split(" ")[0]: t["status"] for t in targets([], many)}
    assert statuses["3x200"] in ("met", "NOT MET")
    assert set(children_of(os.getpid())) <= before


def test_the_fetch_floor_reads_exactly_the_pages_a_refresh_reads() -> None:
    """The same requests, parameters included, as the exporter's client in one refresh."""
    with Simulator(Fleet(size=1000, seed=7, evolve=False)) as sim:
        asked: list[tuple[str, tuple[tuple[str, str], ...]]] = []
        pages = sim.pages
        for api in ("demanager", "notebooks", "flavors"):  # each call's parameters noted

            def recorded(params: dict[str, str], *args: Any, api: str = api, **kw: Any) -> Any:
                asked.append((api, tuple(sorted(params.items()))))
                return getattr(type(pages), api)(pages, params, *args, **kw)

            setattr(pages, api, recorded)
        provider = AkSkProvider(SecretStr(DEMO_AK), SecretStr(DEMO_SK), project_id=DEMO_PROJECT_ID)
        client = ModelArtsClient(sim.url, DEMO_PROJECT_ID, provider)
        client.list_instances()  # the first refresh lists the flavors too
        asked.clear()
        client.list_instances()
        client.close()
        by_the_exporter = sorted(asked)
        asked.clear()
        downloader = Downloader(sim.url)
        downloader.once()
        downloader.close()
    assert sorted(asked) == by_the_exporter
    assert downloader.requests == len(by_the_exporter) == 28 and sim.stats.rejected == 0


# -- the targets, on made-up results ---------------------------------------------------


def made_up(instances: int, **changes: float) -> dict[str, object]:
    """A size's result with the figures the targets read; `changes` override some."""
    figures = {
        "ratio": 1.2,  # hot, back to back, every variant
        "new_second_gzip": 1.8,
        "cold": 2.5,
        "churn": 3.0,
        "fetch": 1.0,
        "cpu": 1.5,
        "churn_cpu": 2.5,
        "rss": 230.0,  # MiB: 241 MB
        "failed": 0,
    } | changes
    return {
        "instances": instances,
        "ratio_ours_over_limit": dict.fromkeys(VARIANTS, figures["ratio"]),
        "ratio_new_second_over_limit": {
            "text": 1.1,
            "openmetrics": 1.1,
            "openmetrics+gzip": figures["new_second_gzip"],
        },
        "fetch": {"median_s": figures["fetch"]},
        "cold": {
            "p50_s": figures["cold"],
            "minus_fetch_p50_s": figures["cold"] - figures["fetch"],
            "cpu_s_per_scrape": figures["cpu"],
            "failed_refreshes": figures["failed"],
        },
        "churn": {
            "p50_s": figures["churn"],
            "minus_fetch_p50_s": figures["churn"] - figures["fetch"],
            "cpu_s_per_scrape": figures["churn_cpu"],
            "failed_refreshes": 0,
        },
        "rss_mb": {"peak": figures["rss"]},
        "concurrency": {"listings_per_window": 1.0, "exactly_one_per_window": True},
        "ratio_naive_over_ours": 100.0,
    }


def made_up_many(**changes: object) -> dict[str, object]:
    out: dict[str, object] = {
        "targets": 20,
        "instances": 5000,
        "refresh_budget_s": 8.0,
        "failures": 0,
        "scrapes": {"n": 20, "max_ms": 1500.0, "p95_ms": 1200.0, "over_2s": 0},
        "fast": {"max_age_s": 9.0, "age_limit_s": 12.0, "always_up": True},
        "slow": {"max_refresh_s": 12.0, "always_up": True, "refresh_over_budget": True},
    }
    return out | changes


def status(found: list[dict[str, object]], starts: str) -> str:
    (match,) = [t for t in found if str(t["target"]).startswith(starts)]
    return str(match["status"])


# 10k: cold - fetch 0.4 s (its limit is 0.5 s; 50k's 2.0 s).
BASE: dict[int, dict[str, float]] = {1_000: {}, 10_000: {"cold": 1.4}, 50_000: {}}


def test_the_targets_of_a_run_that_meets_them() -> None:
    found = targets([made_up(n, **BASE[n]) for n in BASE], made_up_many())
    assert {t["status"] for t in found} == {"met"}, found
    assert len(found) == 15


def test_each_target_misses_on_its_own_figure() -> None:
    cases = [
        ({50_000: {"ratio": 1.6}}, "50k: hot scrape"),
        ({10_000: {"new_second_gzip": 2.1}}, "10k: first scrape of a second"),
        ({50_000: {"cold": 3.1}}, "50k, unchanged fleet: cold scrape - fetch"),
        ({50_000: {"failed": 1}}, "50k, unchanged fleet: cold scrape - fetch"),
        ({50_000: {"cpu": 2.1}}, "50k, unchanged fleet: exporter CPU"),
        ({50_000: {"churn": 4.1}}, "50k, 5% changed: cold scrape - fetch"),
        ({50_000: {"churn_cpu": 3.1}}, "50k, 5% changed: exporter CPU"),
        ({10_000: {"cold": 1.6}}, "10k, unchanged fleet: cold scrape - fetch"),
        ({50_000: {"rss": 240.0}}, "50k: peak RSS"),  # MiB, under 250; but 251.7 MB
    ]
    for changes, name in cases:
        sizes = [made_up(n, **BASE[n] | changes.get(n, {})) for n in BASE]
        found = targets(sizes, made_up_many())
        assert status(found, name) == "NOT MET", (name, found)
        assert sum(t["status"] == "NOT MET" for t in found) == 1, (name, found)


def test_the_many_targets_figures() -> None:
    slow_scrape = {"n": 20, "max_ms": 2500.0, "p95_ms": 2100.0, "over_2s": 2}
    found = targets([], made_up_many(scrapes=slow_scrape))
    assert status(found, "20x5k in one process") == "NOT MET"
    delayed = {"max_age_s": 20.0, "age_limit_s": 12.0, "always_up": True}
    assert status(targets([], made_up_many(fast=delayed)), "20x5k: the slow") == "NOT MET"
    down = {"max_refresh_s": 12.0, "always_up": False, "refresh_over_budget": True}
    assert status(targets([], made_up_many(slow=down)), "a refresh longer") == "NOT MET"
    # A slow target that was not slower than the budget proves nothing: not measured.
    quick = {"max_refresh_s": 6.0, "always_up": True, "refresh_over_budget": False}
    assert status(targets([], made_up_many(slow=quick)), "a refresh longer") == "not measured"


def test_what_was_not_run_is_not_measured() -> None:
    found = targets([made_up(1_000)])
    assert status(found, "1k: hot scrape") == "met"
    assert status(found, "every size") == "met"
    for name in ("10k", "50k", "20x5k", "a refresh longer"):
        assert all(
            t["status"] == "not measured" for t in found if str(t["target"]).startswith(name)
        )
    # An older result without the fetch floor: its cold - fetch is not measured.
    old = made_up(50_000)
    del old["fetch"]
    assert status(targets([old]), "50k, unchanged fleet: cold scrape - fetch") == "not measured"
