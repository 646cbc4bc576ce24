"""The measurements: one simulated fleet, the exporter, the limit and the naive exporter.

`measure_size` runs everything at one fleet size (see bench/run.py for what each part
is) and returns one result dict; each part is a function of its own: hot scrapes against
the limit and the first scrape of a new second (`hot_and_limit`, `new_second`), scrapes
after the cache expired (`cold`), bursts of simultaneous scrapers counting upstream
listings (`concurrency`) and the naive exporter (`naive`). Every child process is
ended before `measure_size` returns.
"""

from __future__ import annotations

import gzip
import math
import statistics
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

from bench.fetch import fetch_floor
from bench.plan import FULL, PROMETHEUS, VARIANTS, Plan
from bench.procs import Child, Children, cpu_seconds, memory_mb, scrape
from bench.static_server import save
from exporter.modelarts.client import FEATURES, ListQuery
from exporter.simulator import Fleet, Simulator

HOT_TTL = 3600.0
PROMETHEUS_TIMEOUT_S = 10.0  # Prometheus's default scrape_timeout
REFRESH_STAMP = b"modelarts_exporter_last_refresh_success_timestamp_seconds{"
DURATION = b"modelarts_exporter_refresh_duration_seconds{"


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


def cold(
    exporter: Child,
    sim: Simulator,
    plan: Plan,
    log: Callable[[str], None],
    *,
    scrapes: int | None = None,
    budget_s: float | None = None,
    prepare: Callable[[], object] | None = None,
    label: str = "cold scrape",
) -> dict[str, Any]:
    """Single scrapes (as Prometheus sends them) each after the cache expired; before each,
    `prepare()` (changing the fleet), untimed."""
    scrapes = plan.cold_scrapes if scrapes is None else scrapes
    budget_s = plan.cold_budget_s if budget_s is None else budget_s
    samples: list[float] = []
    refreshes: list[float] = []
    cpus: list[float] = []
    extra_listings = failed = 0
    flavor_requests = sim.stats.flavor_requests
    spent = 0.0
    for _ in range(scrapes):
        if samples and spent + plan.cold_ttl_s + samples[-1] > budget_s:
            break
        began = time.perf_counter()
        if prepare is not None:
            prepare()
        time.sleep(plan.cold_ttl_s + 0.2)  # past the TTL, counted from the last refresh's end
        listings = sim.stats.listings
        cpu_before = cpu_seconds(exporter.pid)
        seconds, body = checked(scrape(exporter.port, PROMETHEUS), f"exporter ({label})")
        cpus.append(cpu_seconds(exporter.pid) - cpu_before)
        extra_listings += sim.stats.listings - listings - 1
        samples.append(seconds)
        tail = dynamic_tail(body)
        duration = sample(tail, DURATION)
        if duration is not None:
            refreshes.append(duration)
        failed += sample(tail, b"modelarts_up{") != 1.0
        spent += time.perf_counter() - began
        log(
            f"    {label} {seconds:.3f} s (of which listing {duration or 0:.3f} s),"
            f" exporter CPU {cpus[-1]:.2f} s"
        )
    return {
        "n": len(samples),
        "samples_s": samples,
        "p50_s": statistics.median(samples),
        "max_s": max(samples),
        "listing_s": refreshes,
        "cpu_s": cpus,
        "cpu_s_per_scrape": sum(cpus) / len(samples),
        "all_cold": extra_listings == 0,  # each sample made exactly one listing
        "failed_refreshes": failed,  # modelarts_up 0: the refresh failed (e.g. its budget)
        # Flavors listings during these scrapes (kept for --flavor-cache-ttl, so usually
        # none): the fetch floor leaves them out.
        "flavor_requests": sim.stats.flavor_requests - flavor_requests,
    }


def churn_and_warm(sim: Simulator, share: float) -> int:
    """Change `share` of the fleet, then build the simulator's pages of the new fleet for
    every listing the exporter reads (its own parameters: the page cache is keyed by the
    filters), so that the simulator's JSON encoding is not billed to the exporter."""
    changed = sim.fleet.churn(share)
    query = ListQuery()
    for _ in range(2):  # the page cache may clear itself while storing: again, all cached
        sim.list_page(query.params(0, 1))
        for feature in FEATURES:
            sim.notebooks_page(query.notebooks_params(0, feature))
    return changed


def flag(args: tuple[str, ...], name: str, default: float) -> float:
    """The value of `name` among exporter arguments (`--x=v` or `--x v`), else `default`."""
    value: float = default
    for index, arg in enumerate(args):
        if arg.startswith(name + "="):
            value = float(arg.split("=", 1)[1])
        elif arg == name and index + 1 < len(args):
            value = float(args[index + 1])
    return value


def measure_fetch(
    sim: Simulator, plan: Plan, exporter_args: tuple[str, ...], log: Callable[[str], None]
) -> dict[str, Any]:
    """The fetch floor (bench.fetch): the pages of one refresh, downloaded, no parsing."""
    out = fetch_floor(
        sim.url,
        plan.fetch_repeats,
        page_size=int(flag(exporter_args, "--page-size", 200)),
        page_concurrency=int(flag(exporter_args, "--page-concurrency", 4)),
    )
    log(
        f"    fetch floor {out['median_s']:.3f} s (median of {len(out['seconds'])}:"
        f" {out['requests']} requests, {out['bytes'] / 1e6:.1f} MB)"
    )
    return out


def minus_fetch(result: dict[str, Any], fetch_s: float) -> None:
    """Each cold scrape minus the fetch floor: the exporter's own part of a refresh."""
    result["minus_fetch_s"] = [s - fetch_s for s in result["samples_s"]]
    result["minus_fetch_p50_s"] = result["p50_s"] - fetch_s
    result["minus_fetch_max_s"] = result["max_s"] - fetch_s


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

        # Scrapes that wait for their refresh: what a refresh costs, and single flight
        # under a herd (by default only the first scrape waits; --exporter-arg overrides).
        cycling = children.exporter(
            sim.url, plan.cold_ttl_s, ("--no-refresh.background", *exporter_args)
        )
        cycling.wait_for("/-/ready", plan.start_timeout_s)
        # As Prometheus scrapes from the start: the first compression of the whole static
        # part happens once, not in every refresh, so it is not billed to the first sample.
        checked(scrape(cycling.port, PROMETHEUS), "exporter (first scrape)")
        before = measure_fetch(sim, plan, exporter_args, log)
        result["cold"] = cold(cycling, sim, plan, log)  # the fleet unchanged
        changed: list[int] = []
        result["churn"] = cold(
            cycling,
            sim,
            plan,
            log,
            scrapes=plan.churn_scrapes,
            budget_s=plan.churn_budget_s,
            prepare=lambda: changed.append(churn_and_warm(sim, plan.churn_share)),
            label=f"cold scrape, {plan.churn_share:.0%} changed,",
        )
        result["churn"].update(share=plan.churn_share, changed=changed)
        after = measure_fetch(sim, plan, exporter_args, log)
        fetch_s = statistics.median(before["seconds"] + after["seconds"])
        result["fetch"] = {
            "median_s": fetch_s,
            "before_s": before["seconds"],
            "after_s": after["seconds"],
            "bytes": before["bytes"],
            "requests": before["requests"],
        }
        minus_fetch(result["cold"], fetch_s)
        minus_fetch(result["churn"], fetch_s)
        log(
            f"    cold - fetch: unchanged {result['cold']['minus_fetch_p50_s']:.3f} s,"
            f" {plan.churn_share:.0%} changed {result['churn']['minus_fetch_p50_s']:.3f} s"
            f" (median); CPU {result['cold']['cpu_s_per_scrape']:.2f} s /"
            f" {result['churn']['cpu_s_per_scrape']:.2f} s a refresh"
        )
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
