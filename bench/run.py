"""The benchmark: the exporter against the limit, a naive exporter and itself, by fleet size.

    python -m bench                    # 1k, 10k and 50k instances, ~3-4 minutes on 2 cores
    python -m bench --quick            # 1k instances, fewer scrapes, ~15 seconds
    python -m bench --sizes 1000,5000  # any sizes

For each size, one simulated fleet (`exporter.simulator`, standing still so that its pages
are cached) and, one after the other, as separate processes on 127.0.0.1:

- the exporter with a long `--cache-ttl`: hot scrapes, in three variants (plain text,
  OpenMetrics as Prometheus asks for it, OpenMetrics + gzip as Prometheus really scrapes),
  back to back and then each the first scrape of a new second;
- the limit: the same bytes, fetched once from the exporter, served by a static WSGI app
  on the same prometheus_client server, scraped in turn with the exporter;
- the exporter with a 1 s `--cache-ttl`: cold scrapes (fetch, parse, render after the
  cache expired), then bursts of 50 scrapers counting upstream listings per TTL window;
- `bench/naive_exporter.py`, which refetches everything on every scrape.

It prints the tables, the ratios and the targets, and writes `bench/results.json`,
`docs/performance.png` and the results block of `docs/performance.md`.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/run.py`: make the repository importable
    sys.path.append(str(Path(__file__).resolve().parent.parent))

from bench.procs import ROOT, Child, Children, cpu_seconds, memory_mb, scrape
from bench.static_server import save
from exporter import __version__
from exporter.simulator import Fleet, Simulator

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
HOT_TTL = 3600.0
PROMETHEUS_TIMEOUT_S = 10.0  # Prometheus's default scrape_timeout
REFRESH_STAMP = b"modelarts_exporter_last_refresh_success_timestamp_seconds{"
DURATION = b"modelarts_exporter_refresh_duration_seconds{"
RESULTS = ROOT / "bench" / "results.json"
PLOT = ROOT / "docs" / "performance.png"
DOC = ROOT / "docs" / "performance.md"
SIZES = (1_000, 10_000, 50_000)


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
)


# -- measuring --------------------------------------------------------------------------


def summary(latencies: list[float], cpu_s: float | None = None) -> dict[str, float]:
    """Median, nearest-rank p95 and max in ms; CPU ms per request when given."""
    ordered = sorted(latencies)
    out = {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[max(0, -(-95 * len(ordered) // 100) - 1)] * 1000,
        "max_ms": ordered[-1] * 1000,
    }
    if cpu_s is not None:
        out["cpu_ms_per_scrape"] = cpu_s / len(ordered) * 1000
    return out


def dynamic_tail(body: bytes) -> bytes:
    """The decompressed last gzip member of a body (the exporter's own per-scrape lines).

    The exporter sends its cached parts and the per-scrape one as separate gzip members;
    decompressing only the last one keeps 50 scrapers cheap. Any other shape (a single
    member) falls back to decompressing everything, which is merely slower.
    """
    end = len(body)
    for _ in range(16):
        start = body.rfind(b"\x1f\x8b\x08", 0, end)
        if start <= 0:
            break
        try:
            return gzip.decompress(body[start:])
        except (OSError, EOFError, zlib.error):
            end = start
    return gzip.decompress(body)


def refresh_stamp(text: bytes) -> str:
    """The `last_refresh_success_timestamp_seconds` value: which refresh a scrape served."""
    at = text.rfind(REFRESH_STAMP)
    if at < 0:
        return ""
    line = text[at : text.find(b"\n", at)]
    return line.rsplit(b" ", 1)[-1].decode()


def sample(text: bytes, series: bytes) -> float | None:
    """The value of the last sample whose line starts with `series` (name and `{`)."""
    at = text.rfind(b"\n" + series)
    if at < 0:
        return None
    return float(text[at : text.find(b"\n", at + 1)].rsplit(b" ", 1)[-1])


def checked(result: tuple[float, int, bytes], who: str) -> tuple[float, bytes]:
    seconds, status, body = result
    if status != 200:
        raise RuntimeError(f"{who}: HTTP {status}: {body[:200]!r}")
    return seconds, body


def hot_and_limit(
    exporter: Child, children: Children, plan: Plan, log: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, int]]:
    """Hot scrapes of the exporter and of the limit, in turn, for every variant; then
    scrapes of the exporter alone, each the first of a new second."""
    bodies, meta, sizes = {}, {}, {}
    for name, headers in VARIANTS.items():
        _, status, body = scrape(exporter.port, headers)
        if status != 200:
            raise RuntimeError(f"exporter: HTTP {status} for {name}")
        bodies[name] = body
        sizes[name] = len(body)
        meta[name] = {
            "content_type": (
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
                if "Accept" in headers
                else "text/plain; version=0.0.4; charset=utf-8"
            ),
            "openmetrics": "Accept" in headers,
            "gzip": "Accept-Encoding" in headers,
        }
    save(children.tmp / "limit", meta, bodies)
    del bodies
    limit = children.static_server(children.tmp / "limit")
    ours: dict[str, Any] = {}
    floor: dict[str, Any] = {}
    try:
        for name, headers in VARIANTS.items():
            mine: list[float] = []
            theirs: list[float] = []
            cpu_mine, cpu_theirs = cpu_seconds(exporter.pid), cpu_seconds(limit.pid)
            deadline = time.perf_counter() + plan.hot_budget_s
            for _ in range(plan.hot_scrapes):
                mine.append(checked(scrape(exporter.port, headers), "exporter")[0])
                theirs.append(checked(scrape(limit.port, headers), "limit")[0])
                if time.perf_counter() > deadline and len(mine) >= 3:
                    break
            ours[name] = summary(mine, cpu_seconds(exporter.pid) - cpu_mine)
            floor[name] = summary(theirs, cpu_seconds(limit.pid) - cpu_theirs)
            log(
                f"    hot {name:<17} ours {ours[name]['p50_ms']:8.2f} ms"
                f"   limit {floor[name]['p50_ms']:8.2f} ms   ({len(mine)} scrapes each)"
            )
    finally:
        children.stop(limit)
    fresh = new_second(exporter, plan.new_seconds)
    log(
        "    first of a second: "
        + ", ".join(f"{name} {fresh[name]['p50_ms']:.2f} ms" for name in VARIANTS)
    )
    return ours, floor, fresh, sizes


def new_second(exporter: Child, seconds: int) -> dict[str, dict[str, float]]:
    """Scrapes each the first of a new second for its format: anything the exporter
    caches per second is rebuilt, as for a lone Prometheus, whose scrapes are seconds
    apart (back-to-back scrapes share it). Just after each of `seconds` whole seconds:
    one plain-text scrape, then one OpenMetrics scrape, gzip-compressed every other
    second (text and OpenMetrics are cached apart; gzip compresses OpenMetrics).
    """
    latencies: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpu = dict.fromkeys(VARIANTS, 0.0)
    for i in range(seconds):
        now = time.time()
        time.sleep(math.ceil(now) - now + 0.002)
        for name in ("text", "openmetrics+gzip" if i % 2 == 0 else "openmetrics"):
            before = cpu_seconds(exporter.pid)
            latencies[name].append(checked(scrape(exporter.port, VARIANTS[name]), "exporter")[0])
            cpu[name] += cpu_seconds(exporter.pid) - before
    return {name: summary(latencies[name], cpu[name]) for name in VARIANTS}


def cold(exporter: Child, sim: Simulator, plan: Plan, log: Callable[[str], None]) -> dict[str, Any]:
    """Single scrapes (as Prometheus sends them) each after the cache expired."""
    samples: list[float] = []
    refreshes: list[float] = []
    extra_listings = failed = 0
    cpu = 0.0
    spent = 0.0
    for _ in range(plan.cold_scrapes):
        if samples and spent + plan.cold_ttl_s + samples[-1] > plan.cold_budget_s:
            break
        time.sleep(plan.cold_ttl_s + 0.2)  # past the TTL, counted from the last refresh's end
        listings = sim.stats.listings
        cpu_before = cpu_seconds(exporter.pid)
        seconds, body = checked(scrape(exporter.port, PROMETHEUS), "exporter (cold)")
        cpu += cpu_seconds(exporter.pid) - cpu_before
        extra_listings += sim.stats.listings - listings - 1
        samples.append(seconds)
        tail = dynamic_tail(body)
        duration = sample(tail, DURATION)
        if duration is not None:
            refreshes.append(duration)
        failed += sample(tail, b"modelarts_up{") != 1.0
        spent += plan.cold_ttl_s + 0.2 + seconds
        log(f"    cold scrape {seconds:.3f} s (of which listing {duration or 0:.3f} s)")
    return {
        "n": len(samples),
        "samples_s": samples,
        "p50_s": statistics.median(samples),
        "max_s": max(samples),
        "listing_s": refreshes,
        "cpu_s_per_scrape": cpu / len(samples),
        "all_cold": extra_listings == 0,  # each sample made exactly one listing
        "failed_refreshes": failed,  # modelarts_up 0: the refresh failed (e.g. its budget)
    }


def concurrency(
    exporter: Child, sim: Simulator, plan: Plan, log: Callable[[str], None]
) -> dict[str, Any]:
    """Bursts of `plan.scrapers` simultaneous scrapes, each starting in a new TTL window.

    Each burst starts once the cache has expired, all scrapers released at once (the
    thundering herd that HA pairs and federation produce), each scraping once. The
    simulator counts upstream listings. Every scrape tells which refresh attempt it
    served: its `refresh_duration_seconds` (set by every attempt, failed or not) and its
    `last_refresh_success_timestamp_seconds` (set by the successful ones). Each attempt
    opens one TTL window, so single flight means listings == attempts served, in every
    burst. (A burst that outlives the TTL rightly spans more than one window.)
    """
    _, before = checked(scrape(exporter.port, PROMETHEUS), "exporter")
    tail = dynamic_tail(before)
    previous = (refresh_stamp(tail), sample(tail, DURATION))
    latencies: list[float] = []
    windows: list[dict[str, Any]] = []
    spent = 0.0
    for _ in range(plan.windows):
        if windows and spent + windows[-1]["seconds"] > plan.concurrency_budget_s:
            break
        time.sleep(plan.cold_ttl_s + 0.2)  # the cache has expired: a new window
        burst = _burst(exporter, sim, plan.scrapers)
        attempts = {d for _, d in burst["served"]} - {previous[1], None}
        refreshes = {s for s, _ in burst["served"]} - {previous[0], ""}
        windows.append(
            {
                "listings": burst["listings"],
                "attempts_seen": len(attempts),
                "refreshes_seen": len(refreshes),
                "failed_refreshes": len(attempts) - len(refreshes),
                "scrapes": len(burst["latencies"]),
                "over_10s": sum(t > PROMETHEUS_TIMEOUT_S for t in burst["latencies"]),
                "served_up_0": burst["down"],
                "failures": len(burst["failures"]),
                "failure_examples": burst["failures"][:3],
                "seconds": burst["seconds"],
            }
        )
        if burst["served"]:
            previous = max(burst["served"], key=lambda sd: float(sd[0] or 0))
        latencies += burst["latencies"]
        spent += plan.cold_ttl_s + 0.2 + burst["seconds"]
    listings = sum(w["listings"] for w in windows)
    attempts_total = sum(w["attempts_seen"] for w in windows)
    out = {
        "scrapers": plan.scrapers,
        "ttl_s": plan.cold_ttl_s,
        "bursts": len(windows),
        "listings": listings,
        "attempts_seen": attempts_total,
        "refreshes_seen": sum(w["refreshes_seen"] for w in windows),
        "failed_refreshes": sum(w["failed_refreshes"] for w in windows),
        "listings_per_window": listings / attempts_total if attempts_total else None,
        "exactly_one_per_window": bool(windows)
        and all(w["listings"] == w["attempts_seen"] >= 1 for w in windows),
        "over_10s": sum(w["over_10s"] for w in windows),
        "failures": sum(w["failures"] for w in windows),
        "per_burst": windows,
        **{k: v for k, v in summary(latencies).items() if k != "n"},
    }
    log(
        f"    {len(windows)} bursts of {plan.scrapers} scrapers: {listings} upstream listings"
        f" for {attempts_total} refreshes served ({out['failed_refreshes']} failed),"
        f" slowest scrape {out['max_ms'] / 1000:.2f} s, {out['over_10s']} over 10 s,"
        f" {out['failures']} failed"
    )
    return out


def _burst(exporter: Child, sim: Simulator, scrapers: int) -> dict[str, Any]:
    """`scrapers` threads released together, one scrape each, all done within 45 s."""
    gate = threading.Barrier(scrapers + 1, timeout=30)
    lock = threading.Lock()
    latencies: list[float] = []
    served: list[tuple[str, float | None]] = []  # (refresh timestamp, refresh duration)
    down = 0  # scrapes that served `modelarts_up 0`: a refresh failed
    failures: list[str] = []

    def scraper() -> None:
        nonlocal down
        try:
            gate.wait()
            seconds, body = checked(scrape(exporter.port, PROMETHEUS, timeout=30), "scrape")
            tail = dynamic_tail(body)
        except (OSError, RuntimeError, threading.BrokenBarrierError) as err:
            with lock:
                failures.append(str(err)[:200] or type(err).__name__)
            return
        with lock:
            latencies.append(seconds)
            served.append((refresh_stamp(tail), sample(tail, DURATION)))
            down += sample(tail, b"modelarts_up{") != 1.0

    threads = [threading.Thread(target=scraper, daemon=True) for _ in range(scrapers)]
    for thread in threads:
        thread.start()
    listings = sim.stats.listings
    started = time.perf_counter()
    gate.wait()
    for thread in threads:
        thread.join(timeout=max(0.0, started + 45 - time.perf_counter()))
    with lock:
        return {
            "listings": sim.stats.listings - listings,
            "latencies": list(latencies),
            "served": list(served),
            "down": down,
            "failures": failures + ["unfinished"] * (scrapers - len(latencies) - len(failures)),
            "seconds": time.perf_counter() - started,
        }


def naive(
    children: Children, sim_url: str, plan: Plan, log: Callable[[str], None]
) -> dict[str, Any]:
    child = children.naive(sim_url)
    try:
        deadline = time.monotonic() + plan.start_timeout_s
        while not _listening(child.port):
            if not child.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"naive exporter did not start:\n{child.log_tail()}")
            time.sleep(0.02)
        samples: list[float] = []
        cpu_before = cpu_seconds(child.pid)
        spent = 0.0
        for _ in range(plan.naive_scrapes):
            if samples and spent + samples[-1] > plan.naive_budget_s:
                break
            seconds, _ = checked(scrape(child.port, timeout=120), "naive exporter")
            samples.append(seconds)
            spent += seconds
        out = summary(samples, cpu_seconds(child.pid) - cpu_before)
        out["rss_mb"] = memory_mb(child.pid)
        log(f"    naive {out['p50_ms'] / 1000:.3f} s per scrape ({len(samples)} scrapes)")
        return out
    finally:
        children.stop(child)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def measure_size(
    instances: int,
    plan: Plan = FULL,
    seed: int = 7,
    log: Callable[[str], None] = print,
    exporter_args: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Everything at one fleet size; every child process is ended before it returns."""
    started = time.perf_counter()
    fleet = Fleet(size=instances, seed=seed, evolve=False)
    with Simulator(fleet, seed=seed) as sim, Children() as children:
        # Build the simulator's page cache now, so no measurement pays for it.
        sim.list_page({"de_type": "Notebook", "show_self": "false", "offset": "0", "limit": "1"})
        result: dict[str, Any] = {"instances": instances}

        hot = children.exporter(sim.url, HOT_TTL, exporter_args)
        healthy = hot.wait_for("/-/healthy", plan.start_timeout_s)
        ready = healthy + hot.wait_for("/-/ready", plan.start_timeout_s)
        result["startup"] = {"healthy_s": healthy, "ready_s": ready}
        log(f"    exporter ready {ready:.2f} s after start")
        ours, floor, fresh, sizes = hot_and_limit(hot, children, plan, log)
        result.update(hot=ours, limit=floor, hot_new_second=fresh, body_bytes=sizes)
        result["ratio_ours_over_limit"] = {
            name: ours[name]["p50_ms"] / floor[name]["p50_ms"] for name in VARIANTS
        }
        result["ratio_new_second_over_limit"] = {
            name: fresh[name]["p50_ms"] / floor[name]["p50_ms"] for name in VARIANTS
        }
        rss = {"hot": memory_mb(hot.pid)}
        children.stop(hot)

        cycling = children.exporter(sim.url, plan.cold_ttl_s, exporter_args)
        cycling.wait_for("/-/ready", plan.start_timeout_s)
        result["cold"] = cold(cycling, sim, plan, log)
        rss["refreshes"] = memory_mb(cycling.pid)  # refresh after refresh, one scraper
        result["concurrency"] = concurrency(cycling, sim, plan, log)
        rss["bursts"] = memory_mb(cycling.pid)  # VmHWM: also includes the refreshes
        children.stop(cycling)
        rss["peak"] = max(rss["hot"]["peak"], rss["bursts"]["peak"])
        result["rss_mb"] = rss

        result["naive"] = naive(children, sim.url, plan, log)
        result["ratio_naive_over_ours"] = result["naive"]["p50_ms"] / ours["text"]["p50_ms"]
    result["bench_seconds"] = time.perf_counter() - started
    return result


# -- reporting ---------------------------------------------------------------------------


def targets(sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lead's targets, each met, not met, or not measured (size not run)."""
    by_size = {r["instances"]: r for r in sizes}
    out: list[dict[str, Any]] = []

    def add(name: str, size: int, value: Callable[[dict[str, Any]], Any], ok: Any) -> None:
        r = by_size.get(size)
        if r is None:
            out.append({"target": name, "status": "not measured"})
            return
        v = value(r)
        out.append({"target": name, "value": v, "status": "met" if ok(v) else "NOT MET"})

    for variant in VARIANTS:
        add(
            f"10k: hot scrape ({variant}) <= 1.5x the limit, back-to-back / first of a second",
            10_000,
            lambda r, v=variant: (
                round(r["ratio_ours_over_limit"][v], 2),
                round(r["ratio_new_second_over_limit"][v], 2),
            ),
            lambda x: max(x) <= 1.5,
        )
    add(
        "10k: naive >= 20x slower than ours (text)",
        10_000,
        lambda r: round(r["ratio_naive_over_ours"], 1),
        lambda x: x >= 20,
    )
    for size, limit, label in ((10_000, 1.0, "<= 1.0 s"), (50_000, 9.999, "< 10 s")):
        add(
            f"{size // 1000}k: cold scrape {label} (median; failed refreshes must be 0)",
            size,
            lambda r: (round(r["cold"]["p50_s"], 2), r["cold"]["failed_refreshes"]),
            lambda x, limit=limit: x[0] <= limit and x[1] == 0,
        )
    add(
        "10k: peak RSS <= 150 MiB (VmHWM, any phase, bursts of 50 included)",
        10_000,
        lambda r: round(r["rss_mb"]["peak"], 1),
        lambda x: x <= 150,
    )
    per_window = {r["instances"]: r["concurrency"]["listings_per_window"] for r in sizes}
    out.append(
        {
            "target": "every size: exactly 1 upstream listing per TTL window, 50 scrapers",
            "value": per_window,
            "status": (
                "met"
                if sizes and all(r["concurrency"]["exactly_one_per_window"] for r in sizes)
                else "NOT MET"
            ),
        }
    )
    return out


def growth(sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Marginal cost per instance between consecutive sizes."""
    out = []
    for small, big in itertools.pairwise(sizes):
        added = big["instances"] - small["instances"]

        def per(get: Callable[[dict[str, Any]], float], b: dict[str, Any] = big) -> float:
            return (get(b) - get(small)) / added  # noqa: B023

        out.append(
            {
                "from": small["instances"],
                "to": big["instances"],
                "rss_kb_per_instance": per(lambda r: r["rss_mb"]["peak"]) * 1024,
                "body_bytes_per_instance": per(lambda r: r["body_bytes"]["text"]),
                "hot_cpu_us_per_instance": {
                    v: per(lambda r, v=v: r["hot"][v]["cpu_ms_per_scrape"]) * 1000 for v in VARIANTS
                },
                "new_second_cpu_us_per_instance": {
                    v: per(lambda r, v=v: r["hot_new_second"][v]["cpu_ms_per_scrape"]) * 1000
                    for v in VARIANTS
                },
                "cold_ms_per_instance": per(lambda r: r["cold"]["p50_s"]) * 1000,
                "naive_ms_per_instance": per(lambda r: r["naive"]["p50_ms"]),
            }
        )
    return out


def table(sizes: list[dict[str, Any]]) -> str:
    lines = [
        "Hot scrape, warm cache: median / p95 latency in ms, CPU ms per scrape;"
        " 'new s': each scrape the first of a new second",
        f"{'instances':>9}  {'variant':<16} {'body':>8}  {'ours':>15}  {'ours new s':>10}"
        f"  {'limit':>15}  {'ours/limit':>10}  {'new s/limit':>11}"
        f"  {'CPU ours':>8}  {'new s':>6}  {'limit':>6}",
    ]
    for r in sizes:
        for v in VARIANTS:
            o, n, f = r["hot"][v], r["hot_new_second"][v], r["limit"][v]
            lines.append(
                f"{r['instances']:>9,}  {v:<16} {_mb(r['body_bytes'][v]):>8}"
                f"  {o['p50_ms']:7.2f} /{o['p95_ms']:6.2f}  {n['p50_ms']:10.2f}"
                f"  {f['p50_ms']:7.2f} /{f['p95_ms']:6.2f}"
                f"  {r['ratio_ours_over_limit'][v]:>9.2f}x"
                f"  {r['ratio_new_second_over_limit'][v]:>10.2f}x"
                f"  {o['cpu_ms_per_scrape']:8.2f}  {n['cpu_ms_per_scrape']:6.1f}"
                f"  {f['cpu_ms_per_scrape']:6.2f}"
            )
    lines += [
        "",
        "Cold scrape (s), naive exporter, bursts of concurrent scrapers, peak RSS (MiB)",
        f"{'instances':>9}  {'cold':>6} {'max':>6} {'CPU s':>6}  {'naive s':>8}"
        f"  {'naive/ours':>10}  {'listings/windows':>19} {'failed':>6}"
        f" {'burst p50/max s':>15} {'>10s':>4}"
        f"  {'hot':>5} {'refresh':>7} {'bursts':>6} {'naive':>6}",
    ]
    for r in sizes:
        c, n, k, m = r["cold"], r["naive"], r["concurrency"], r["rss_mb"]
        per_window = f"{k['listings']}/{k['attempts_seen']} ({k['bursts']}x{k['scrapers']})"
        lines.append(
            f"{r['instances']:>9,}  {c['p50_s']:6.2f} {c['max_s']:6.2f}"
            f" {c['cpu_s_per_scrape']:6.2f}"
            f"  {n['p50_ms'] / 1000:8.3f}  {r['ratio_naive_over_ours']:>9.0f}x"
            f"  {per_window:>19} {k['failed_refreshes']:>6}"
            f" {k['p50_ms'] / 1000:7.2f}/{k['max_ms'] / 1000:<7.2f}"
            f" {k['over_10s'] + k['failures']:>4}  {m['hot']['peak']:>5.0f}"
            f" {m['refreshes']['peak']:>7.0f} {m['bursts']['peak']:>6.0f}"
            f" {n['rss_mb']['peak']:>6.0f}"
        )
    return "\n".join(lines)


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"


def _ceil(value: float, step: int) -> int:
    return int(-(-value // step) * step)


def sizing(r: dict[str, Any], ttl: float = 30.0, scrapes_per_ttl: float = 4.0) -> dict[str, Any]:
    """Helm `resources` for a fleet of this size, from what was measured.

    Memory: request the peak of refresh after refresh, limit the peak under bursts of
    50 scrapers plus 25 %. CPU: twice the average of one refresh per `ttl` (the default
    --cache-ttl) and `scrapes_per_ttl` Prometheus scrapes (an HA pair every 15 s).
    """
    refresh_cpu = r["cold"]["cpu_s_per_scrape"]
    # A lone Prometheus scrape is the first of its second: nothing per-second is cached.
    scrape_cpu = r["hot_new_second"]["openmetrics+gzip"]["cpu_ms_per_scrape"] / 1000
    average_m = 1000 * (refresh_cpu + scrapes_per_ttl * scrape_cpu) / ttl
    return {
        "requests_memory_mi": _ceil(r["rss_mb"]["refreshes"]["peak"], 16),
        "limits_memory_mi": _ceil(r["rss_mb"]["peak"] * 1.25, 64),
        "average_cpu_m": average_m,
        "requests_cpu_m": max(50, _ceil(2 * average_m, 10)),
    }


def markdown(report: dict[str, Any]) -> str:
    """The results as Markdown, for docs/performance.md."""
    meta, sizes = report["meta"], report["sizes"]
    out = [
        f"Measured {meta['date'][:10]} on {meta['machine']}, Python {meta['python']}, "
        f"exporter {meta['exporter_version']} (commit {meta.get('commit') or '?'}"
        f"{', with local changes' if meta.get('exporter_modified') else ''}"
        f"{', PYTHONPATH=' + meta['pythonpath'] if meta.get('pythonpath') else ''}); "
        f"the whole run took {meta['seconds']:.0f} s.",
        "",
        "**Hot scrape** (warm cache), median / p95 ms and CPU ms per scrape; *new second*:"
        " each scrape the first of a new second, as a lone Prometheus scrapes (median ms,"
        " CPU ms per scrape):",
        "",
        "| instances | variant | body | ours | limit | ours/limit | new second | new second/limit "
        "| CPU ours | CPU new second | CPU limit |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in sizes:
        for v in VARIANTS:
            o, n, f = r["hot"][v], r["hot_new_second"][v], r["limit"][v]
            out.append(
                f"| {r['instances']:,} | {v} | {_mb(r['body_bytes'][v])} "
                f"| {o['p50_ms']:.2f} / {o['p95_ms']:.2f} | {f['p50_ms']:.2f} / {f['p95_ms']:.2f} "
                f"| **{r['ratio_ours_over_limit'][v]:.2f}×** | {n['p50_ms']:.2f} "
                f"| **{r['ratio_new_second_over_limit'][v]:.2f}×** "
                f"| {o['cpu_ms_per_scrape']:.2f} | {n['cpu_ms_per_scrape']:.1f} "
                f"| {f['cpu_ms_per_scrape']:.2f} |"
            )
    out += [
        "",
        "**Cold scrape, naive exporter, bursts, memory**: cold = first scrape after the cache"
        " expired (median / max s, CPU s); naive = `bench/naive_exporter.py`, every scrape;"
        " bursts = 50 scrapers at once after the TTL (upstream listings / refresh attempts"
        " served, of which failed,"
        " scrape latency median / max s, scrapes over Prometheus's 10 s timeout or failed);"
        " peak RSS (VmHWM, MiB) with one refresh, refresh after refresh, and with the bursts.",
        "",
        "| instances | cold s | CPU s | naive s | naive/ours | listings / windows | failed "
        "| burst s | > 10 s | RSS hot | RSS refreshes | RSS bursts | RSS naive |",
        "|" + " ---: |" * 13,
    ]
    for r in sizes:
        c, n, k, m = r["cold"], r["naive"], r["concurrency"], r["rss_mb"]
        out.append(
            f"| {r['instances']:,} | {c['p50_s']:.2f} / {c['max_s']:.2f} "
            f"| {c['cpu_s_per_scrape']:.2f} | {n['p50_ms'] / 1000:.2f} "
            f"| **{r['ratio_naive_over_ours']:.0f}×** "
            f"| {k['listings']} / {k['attempts_seen']} ({k['bursts']}×{k['scrapers']}) "
            f"| {k['failed_refreshes']} "
            f"| {k['p50_ms'] / 1000:.2f} / {k['max_ms'] / 1000:.2f} "
            f"| {k['over_10s'] + k['failures']} | {m['hot']['peak']:.0f} "
            f"| {m['refreshes']['peak']:.0f} | {m['bursts']['peak']:.0f} "
            f"| {n['rss_mb']['peak']:.0f} |"
        )
    if report["growth"]:
        out += [
            "",
            "**Cost of each additional instance** between two measured sizes:",
            "",
            "| instances | peak RSS | exposition (text) | CPU per scrape, first of a second"
            " (text / gzip) | cold scrape | naive scrape |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for g in report["growth"]:
            cpu = g["new_second_cpu_us_per_instance"]
            out.append(
                f"| {g['from']:,} → {g['to']:,} | {g['rss_kb_per_instance']:.1f} KiB "
                f"| {g['body_bytes_per_instance']:.0f} B "
                f"| {cpu['text']:.2f} / {cpu['openmetrics+gzip']:.2f} µs "
                f"| {g['cold_ms_per_instance'] * 1000:.0f} µs "
                f"| {g['naive_ms_per_instance'] * 1000:.0f} µs |"
            )
    out += [
        "",
        "**Suggested `resources`** (see *Sizing* below for how they are derived):",
        "",
        "| instances | requests.memory | limits.memory | requests.cpu | average CPU |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in sizes:
        z = sizing(r)
        out.append(
            f"| {r['instances']:,} | {z['requests_memory_mi']}Mi | {z['limits_memory_mi']}Mi "
            f"| {z['requests_cpu_m']}m | {z['average_cpu_m']:.0f}m |"
        )
    largest = max(sizes, key=lambda r: r["instances"])
    z = sizing(largest)
    out += [
        "",
        f"As Helm values, for {largest['instances']:,} notebooks:",
        "",
        "```yaml",
        "resources:",
        "  requests:",
        f"    cpu: {z['requests_cpu_m']}m",
        f"    memory: {z['requests_memory_mi']}Mi",
        "  limits:",
        f"    memory: {z['limits_memory_mi']}Mi",
        "```",
    ]
    out += ["", "**Targets**:", ""]
    for t in report["targets"]:
        value = f": {t['value']}" if "value" in t else ""
        out.append(f"- {t['status']}: {t['target']}{value}")
    return "\n".join(out)


def update_doc(path: Path, report: dict[str, Any]) -> bool:
    """Replace the block between the bench markers of `path`; False if there are none."""
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    text = path.read_text() if path.exists() else ""
    if begin not in text or end not in text:
        return False
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{markdown(report)}\n{end}{tail}")
    return True


def plot(sizes: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["instances"] for r in sizes]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = [
        ("naive exporter (every scrape)", [r["naive"]["p50_ms"] for r in sizes], "C3", "s-"),
        ("cold scrape (cache expired)", [r["cold"]["p50_s"] * 1000 for r in sizes], "C1", "^-"),
        ("hot, text", [r["hot"]["text"]["p50_ms"] for r in sizes], "C0", "o-"),
        (
            "hot, OpenMetrics+gzip",
            [r["hot"]["openmetrics+gzip"]["p50_ms"] for r in sizes],
            "C2",
            "o-",
        ),
        (
            "hot, OpenMetrics+gzip, first of a second",
            [r["hot_new_second"]["openmetrics+gzip"]["p50_ms"] for r in sizes],
            "C2",
            "v:",
        ),
        ("limit, text", [r["limit"]["text"]["p50_ms"] for r in sizes], "C0", "o--"),
        (
            "limit, OpenMetrics+gzip",
            [r["limit"]["openmetrics+gzip"]["p50_ms"] for r in sizes],
            "C2",
            "o--",
        ),
    ]
    for label, y, color, style in series:
        left.plot(x, y, style, color=color, label=label)
    left.set(xscale="log", yscale="log", xlabel="notebook instances", ylabel="median ms")
    left.set_title("Scrape latency")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    right.plot(
        x,
        [r["rss_mb"]["peak"] for r in sizes],
        "o-",
        color="C1",
        label="exporter, peak (bursts of 50 scrapers)",
    )
    right.plot(
        x,
        [r["rss_mb"]["refreshes"]["peak"] for r in sizes],
        "o-",
        color="C2",
        label="exporter, refresh after refresh",
    )
    right.plot(
        x,
        [r["rss_mb"]["hot"]["peak"] for r in sizes],
        "o--",
        color="C0",
        label="exporter, one refresh",
    )
    right.plot(x, [r["naive"]["rss_mb"]["peak"] for r in sizes], "s-", color="C3", label="naive")
    right.set(xscale="log", yscale="log", xlabel="notebook instances", ylabel="peak RSS, MiB")
    right.set_title("Memory (VmHWM)")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8)
    fig.suptitle(f"modelarts-exporter {__version__}, {_cpu()}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cpu() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs {model}".strip()


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except OSError:
        return ""


def _code() -> dict[str, Any]:
    """Which exporter code is measured: the commit, its `exporter/` tree, local changes."""
    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "exporter_tree": _git("rev-parse", "--short", "HEAD:exporter"),
        "exporter_modified": bool(_git("status", "--short", "--", "exporter")),
        "pythonpath": os.environ.get("PYTHONPATH", ""),  # a patched copy comes first
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k instances, fewer scrapes")
    parser.add_argument("--sizes", help="comma-separated fleet sizes (default 1000,10000,50000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--json",
        type=Path,
        help=f"results file (default {RESULTS.relative_to(ROOT)}; none with --quick"
        " or --exporter-arg)",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        help=f"plot file (default {PLOT.relative_to(ROOT)}; none with --quick or --exporter-arg)",
    )
    parser.add_argument(
        "--doc",
        type=Path,
        help=f"Markdown file whose bench block to update (default {DOC.relative_to(ROOT)};"
        " none with --quick or --exporter-arg)",
    )
    parser.add_argument(
        "--exporter-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for the exporter, e.g. --exporter-arg=--no-metrics.per-instance",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else None
    sizes = sizes or ([1_000] if args.quick else list(SIZES))
    official = not (args.quick or args.exporter_arg)  # what the repository's files show
    json_path = args.json or (RESULTS if official else None)
    plot_path = args.plot or (PLOT if official else None)
    doc_path = args.doc or (DOC if official else None)

    started = time.perf_counter()
    code = _code()  # before the run: the files may change while it goes on
    results = []
    for n in sizes:
        print(f"{n:,} instances", flush=True)
        results.append(
            measure_size(
                n,
                plan,
                seed=args.seed,
                log=lambda s: print(s, flush=True),
                exporter_args=tuple(args.exporter_arg),
            )
        )
    report = {
        "meta": {
            "exporter_version": __version__,
            **code,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "python": platform.python_version(),
            "machine": _cpu(),
            "plan": asdict(replace(plan)),
            "exporter_args": args.exporter_arg,
            "seconds": time.perf_counter() - started,
        },
        "sizes": results,
        "growth": growth(results),
        "targets": targets(results),
    }
    print()
    print(table(results))
    print()
    for t in report["targets"]:
        print(f"  [{t['status']:>12}] {t['target']}: {t.get('value', '')}")
    print(f"\n{report['meta']['seconds']:.0f} s in all")
    if json_path:
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {json_path}")
    if plot_path:
        try:
            plot(results, plot_path)
            print(f"wrote {plot_path}")
        except ImportError:
            print("no plot: matplotlib is missing (pip install -e '.[bench]')", file=sys.stderr)
    if doc_path and update_doc(doc_path, report):
        print(f"updated {doc_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
