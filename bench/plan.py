"""What the benchmark measures at each fleet size: the scrape variants and the `Plan`.

The three variants are the requests every measured server answers (plain text,
OpenMetrics, OpenMetrics + gzip as Prometheus really scrapes); `Plan` says how many
scrapes of each kind and how long at most, `FULL` for `python -m bench`, `QUICK` for
`--quick`.
"""

from __future__ import annotations

from dataclasses import dataclass

# Prometheus's own Accept header for scrapes (OpenMetrics preferred).
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
VARIANTS: dict[str, dict[str, str]] = {
    "text": {},
    "openmetrics": {"Accept": PROMETHEUS_ACCEPT},
    "openmetrics+gzip": {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"},
}
PROMETHEUS = VARIANTS["openmetrics+gzip"]


@dataclass(frozen=True)
class Plan:
    """How much to measure at each size; every loop stops at its count or its budget."""

    hot_scrapes: int = 200  # per variant, for the exporter and for the limit each
    hot_budget_s: float = 6.0  # per variant
    new_seconds: int = 16  # seconds whose first scrapes are measured (see new_second)
    cold_scrapes: int = 3
    cold_ttl_s: float = 1.0
    cold_budget_s: float = 25.0
    scrapers: int = 50
    windows: int = 3
    concurrency_budget_s: float = 25.0
    naive_scrapes: int = 5
    naive_budget_s: float = 25.0
    start_timeout_s: float = 90.0
    # The fetch floor (bench.fetch), before and after the cold scrapes, each a median of:
    fetch_repeats: int = 3
    # Cold scrapes each after a fresh change of this share of the notebooks (Fleet.churn).
    churn_share: float = 0.05
    churn_scrapes: int = 3
    churn_budget_s: float = 45.0
    # Many projects in one process (bench.many): once per run, not per size.
    many_targets: int = 20
    many_instances: int = 5_000
    many_slow: int = 1  # of them, slowed: a refresh of many_slow_factor x --refresh-budget
    many_slow_factor: float = 1.5
    # The exporter's default TTL: at 5 s, 20 x 5k notebooks (~7-9 s of CPU a cycle) would
    # keep a core refreshing without end, which no one should run.
    many_ttl_s: float = 30.0
    many_interval_s: float = 3.0  # between two scrapes of /metrics; a probe in between
    many_duration_s: float = 75.0  # two refresh cycles and more
    many_scrapes: int = 30
    many_start_timeout_s: float = 180.0
    many_sim_processes: int = 1


FULL = Plan()
QUICK = Plan(
    hot_scrapes=40,
    hot_budget_s=2.0,
    new_seconds=4,
    cold_scrapes=2,
    windows=2,
    concurrency_budget_s=8.0,
    naive_scrapes=2,
    naive_budget_s=8.0,
    churn_scrapes=2,
    churn_budget_s=15.0,
    many_duration_s=30.0,
    many_scrapes=15,
)
