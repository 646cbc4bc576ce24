"""Many projects in one exporter process: 20 targets of 5,000 notebooks, one of them slow.

`run_many` starts the simulated projects in a process of their own (`bench.simulators`:
each its own project, access key pair and page cache; the last one answers each request
late enough that its refresh takes `many_slow_factor` times `--refresh-budget`), one
exporter on a targets file naming them all (each target its own credentials, by
environment reference), with a short `--cache-ttl` so that a bounded run holds several
refresh cycles, and scrapes it as Prometheus does: `/metrics` (OpenMetrics + gzip) every
`many_interval_s`, and half an interval later `/probe?target=` of a fast project, for
`many_duration_s` or `many_scrapes` scrapes, whichever ends first. The measuring starts
once every target has served `modelarts_up 1` (the first refresh); what came before is
reported apart.

It reports each scrape's and probe's latency (target: every scrape under 2 s), the
exporter's CPU (per refresh cycle and as a share of a core) and peak RSS, each target's
data age, refresh duration and `modelarts_up` over the run (the slow one must not delay
the others, and must be up once its refresh lands), and the simulators' CPU (were they
the bottleneck?).
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.measure import checked, dynamic_tail, flag, summary
from bench.plan import PROMETHEUS, Plan
from bench.procs import Child, Children, cpu_seconds, memory_mb, scrape
from exporter.config.settings import Settings

# The exporter's own defaults, which --exporter-arg may override.
DEFAULT_BUDGET_S: float = Settings.model_fields["refresh_budget"].default
DEFAULT_BACKGROUND: bool = Settings.model_fields["refresh_background"].default
SELF_SERIES = re.compile(
    rb"^(modelarts_up|modelarts_exporter_data_age_seconds"
    rb"|modelarts_exporter_refresh_duration_seconds"
    rb"|modelarts_exporter_last_refresh_success_timestamp_seconds)\{([^}]*)\} (\S+)",
    re.MULTILINE,
)
PROJECT = re.compile(rb'project_id="([^"]*)"')
SCRAPE_LIMIT_S = 2.0  # the target: every scrape under 2 s after the first refresh


def background(args: tuple[str, ...]) -> bool:
    """Whether the exporter runs with --refresh.background (the last of its flags wins)."""
    chosen = DEFAULT_BACKGROUND
    for arg in args:
        if arg in ("--refresh.background", "--no-refresh.background"):
            chosen = arg == "--refresh.background"
    return chosen


def self_metrics(body: bytes) -> dict[str, dict[str, float]]:
    """project_id → {"up", "age", "duration", "success"} (the last refresh's end, Unix
    seconds), from the exporter's per-scrape lines."""
    found: dict[str, dict[str, float]] = {}
    names = {
        b"modelarts_up": "up",
        b"modelarts_exporter_data_age_seconds": "age",
        b"modelarts_exporter_refresh_duration_seconds": "duration",
        b"modelarts_exporter_last_refresh_success_timestamp_seconds": "success",
    }
    for name, labels, value in SELF_SERIES.findall(dynamic_tail(body)):
        project = PROJECT.search(labels)
        if project is not None:
            found.setdefault(project.group(1).decode(), {})[names[name]] = float(value)
    return found


class Simulators:
    """The `bench.simulators` processes: their targets, their stats on demand."""

    def __init__(self, children: Children, plan: Plan, seed: int, budget: float) -> None:
        self.children = children
        self.procs: list[Child] = []
        self._answers: dict[tuple[int, str], int] = {}  # (pid, key) → lines already read
        count = plan.many_targets
        parts = max(1, min(plan.many_sim_processes, count))
        first = 0
        for part in range(parts):
            share = count // parts + (part < count % parts)
            slow = max(0, plan.many_slow - (count - first - share))  # the last ones are slow
            args = ["-m", "bench.simulators", "--count", str(share), "--first", str(first)]
            args += ["--instances", str(plan.many_instances), "--slow", str(min(slow, share))]
            args += ["--slow-refresh", f"{plan.many_slow_factor * budget:g}"]
            args += ["--seed", str(seed)]
            child = children.start(f"simulators{part}", args, part, stdin=subprocess.PIPE)
            self.procs.append(child)
            first += share
        self.targets: list[dict[str, Any]] = []
        self.start_s = 0.0
        for child in self.procs:
            ready = self._line(child, "targets", plan.many_start_timeout_s)
            self.targets += ready["targets"]
            self.start_s = max(self.start_s, ready["seconds"])

    def _line(self, child: Child, key: str, timeout: float) -> dict[str, Any]:
        """The next JSON line holding `key` in the child's output."""
        deadline = time.monotonic() + timeout
        seen = self._answers.get((child.pid, key), 0)
        while time.monotonic() < deadline:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited:\n{child.log_tail()}")
            answers = [
                line
                for line in child.log.read_text(errors="replace").splitlines()
                if line.startswith(f'{{"{key}"')
            ]
            if len(answers) > seen:
                self._answers[child.pid, key] = seen + 1
                doc: dict[str, Any] = json.loads(answers[seen])
                return doc
            time.sleep(0.05)
        raise RuntimeError(f"{child.name}: no {key} within {timeout:.0f}s\n{child.log_tail()}")

    def stats(self) -> tuple[dict[str, dict[str, int]], float]:
        """Each target's listings and requests, and the simulators' CPU seconds."""
        stats: dict[str, dict[str, int]] = {}
        cpu = 0.0
        for child in self.procs:
            assert child.process.stdin is not None
            child.process.stdin.write(b"stats\n")
            child.process.stdin.flush()
            answer = self._line(child, "stats", 30)
            stats.update(answer["stats"])
            cpu += answer["cpu_s"]
        return stats, cpu

    def stop(self) -> None:
        for child in self.procs:
            if child.process.stdin is not None:
                child.process.stdin.close()  # the end of stdin stops it
            self.children.stop(child)


def targets_file(path: Path, targets: list[dict[str, Any]]) -> dict[str, str]:
    """Write the targets file (each target's own keys, by environment reference); the
    environment it needs."""
    env: dict[str, str] = {}
    doc: dict[str, Any] = {"targets": []}
    for index, t in enumerate(targets):
        env[f"BENCH_AK_{index}"], env[f"BENCH_SK_{index}"] = t["ak"], t["sk"]
        doc["targets"].append(
            {
                "name": t["name"],
                "project_id": t["project_id"],
                "endpoint": t["url"],
                "auth": {"ak": {"env": f"BENCH_AK_{index}"}, "sk": {"env": f"BENCH_SK_{index}"}},
            }
        )
    path.write_text(yaml.safe_dump(doc))
    return env


def run_many(
    plan: Plan,
    seed: int = 7,
    log: Callable[[str], None] = print,
    exporter_args: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The many-targets run; every child process is ended before it returns."""
    started = time.perf_counter()
    budget = flag(exporter_args, "--refresh-budget", DEFAULT_BUDGET_S)
    with Children() as children:
        sims = Simulators(children, plan, seed, budget)
        try:
            result = _measure(children, sims, plan, budget, log, exporter_args)
        finally:
            sims.stop()
    result["bench_seconds"] = time.perf_counter() - started
    return result


def _measure(
    children: Children,
    sims: Simulators,
    plan: Plan,
    budget: float,
    log: Callable[[str], None],
    exporter_args: tuple[str, ...],
) -> dict[str, Any]:
    by_project = {t["project_id"]: t for t in sims.targets}
    fast = [t["name"] for t in sims.targets if not t["slow"]]
    slow = [t["name"] for t in sims.targets if t["slow"]]
    slow_latency = max((t["latency"] for t in sims.targets if t["slow"]), default=0.0)
    log(
        f"    {len(sims.targets)} simulated projects of {plan.many_instances:,} notebooks"
        f" ready in {sims.start_s:.1f} s ({len(slow)} slow: {slow_latency * 1000:.0f} ms"
        f" a request, a refresh ~{plan.many_slow_factor * budget:.0f} s)"
    )
    env = targets_file(children.tmp / "targets.yml", sims.targets)
    exporter = children.exporter_with_file(
        children.tmp / "targets.yml", plan.many_ttl_s, env, exporter_args
    )
    launched, launched_at = time.perf_counter(), time.time()
    exporter.wait_for("/-/healthy", plan.many_start_timeout_s)

    # The first refresh: scrape until every target has served `modelarts_up 1`; each
    # target's first refresh ended at its first `last_refresh_success_timestamp_seconds`.
    landed: dict[str, float] = {}
    warm_latencies: list[float] = []
    deadline = launched + plan.many_start_timeout_s
    while len(landed) < len(sims.targets):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"not every target up within {plan.many_start_timeout_s:.0f}s")
        seconds, body = checked(scrape(exporter.port, PROMETHEUS, timeout=60), "exporter")
        warm_latencies.append(seconds)
        for project, m in self_metrics(body).items():
            name = by_project[project]["name"]
            if m.get("up") == 1.0 and "success" in m:
                landed.setdefault(name, m["success"] - launched_at)
        if len(landed) < len(sims.targets):
            time.sleep(0.5)
    first_fast = max((landed[name] for name in fast), default=0.0)
    first_all = max(landed.values())
    log(
        f"    first refresh: every fast target's landed {first_fast:.1f} s after start, the"
        f" slow one's {first_all:.1f} s; measuring from"
        f" {time.perf_counter() - launched:.1f} s ({len(warm_latencies)} scrapes before,"
        f" the slowest {max(warm_latencies):.1f} s)"
    )

    # The measured run: Prometheus-like scrapes at a fixed rate, probes in between.
    probe_target = fast[0] if fast else sims.targets[0]["name"]
    before_stats, before_sim_cpu = sims.stats()
    cpu_before, wall_before = cpu_seconds(exporter.pid), time.perf_counter()
    latencies: list[float] = []
    probes: list[float] = []
    failures: list[str] = []
    seen: dict[str, dict[str, list[float]]] = {
        t["name"]: {"up": [], "age": [], "duration": [], "success": []} for t in sims.targets
    }
    probe_age: list[float] = []
    begin = time.perf_counter()
    interval = plan.many_interval_s
    tick = 0
    for _ in range(plan.many_scrapes):
        # As Prometheus's ticker: a scrape per interval; one that outlasts it is followed
        # at once by the next (the one tick it kept), then the ticks go on in phase.
        now = time.perf_counter()
        if now - begin > plan.many_duration_s:
            break
        if begin + tick * interval < now - interval:
            tick = int((now - begin) // interval)
        at = begin + tick * interval
        tick += 1
        time.sleep(max(0.0, at - time.perf_counter()))
        try:
            seconds, body = checked(scrape(exporter.port, PROMETHEUS, timeout=30), "scrape")
        except (OSError, RuntimeError) as err:
            failures.append(str(err)[:200] or type(err).__name__)
            continue
        latencies.append(seconds)
        for project, values in self_metrics(body).items():
            for key, value in values.items():
                seen[by_project[project]["name"]][key].append(value)
        time.sleep(max(0.0, at + interval / 2 - time.perf_counter()))
        try:
            path = f"/probe?target={probe_target}"
            seconds, body = checked(scrape(exporter.port, PROMETHEUS, path, timeout=30), "probe")
        except (OSError, RuntimeError) as err:
            failures.append(f"probe: {str(err)[:200] or type(err).__name__}")
            continue
        probes.append(seconds)
        probe_age += [m["age"] for m in self_metrics(body).values() if "age" in m]
    wall = time.perf_counter() - wall_before
    cpu = cpu_seconds(exporter.pid) - cpu_before
    after_stats, after_sim_cpu = sims.stats()
    rss = memory_mb(exporter.pid)
    children.stop(exporter)

    listings = {
        name: after_stats[name]["listings"] - before_stats[name]["listings"] for name in seen
    }
    fast_refreshes = sum(listings[name] for name in fast)
    cycles = fast_refreshes / len(fast) if fast else 0.0

    def worst(names: list[str], key: str) -> float | None:
        values = [v for name in names for v in seen[name][key]]
        return max(values) if values else None

    ups = {name: seen[name]["up"] for name in seen}
    slow_refresh = worst(slow, "duration")
    out: dict[str, Any] = {
        "targets": len(sims.targets),
        "instances": plan.many_instances,
        "slow_targets": len(slow),
        "slow_latency_s": slow_latency,
        "ttl_s": plan.many_ttl_s,
        "interval_s": interval,
        "refresh_budget_s": budget,
        "exporter_args": list(exporter_args),
        "simulators_start_s": sims.start_s,
        "first_refresh": {
            "fast_s": first_fast,  # every fast target's first refresh had landed
            "all_s": first_all,  # every target's
            "measuring_from_s": begin - launched,
            "scrapes": len(warm_latencies),
            "max_scrape_s": max(warm_latencies),
        },
        "seconds": wall,
        "scrapes": {
            **summary(latencies),
            "over_2s": sum(s >= SCRAPE_LIMIT_S for s in latencies),
            "over_10s": sum(s > 10 for s in latencies),
            "samples_s": [round(s, 4) for s in latencies],
        }
        if latencies
        else {"n": 0},
        "probes": {**summary(probes), "target": probe_target} if probes else {"n": 0},
        "failures": len(failures),
        "failure_examples": failures[:3],
        "cpu": {
            "seconds": cpu,
            "core_share": cpu / wall if wall else None,
            "refresh_cycles": cycles,
            "per_cycle_s": cpu / cycles if cycles else None,
            "refreshes": sum(listings.values()),
        },
        "rss_mb": rss,
        "listings": listings,
        "fast": {
            "max_age_s": worst(fast, "age"),
            "max_refresh_s": worst(fast, "duration"),
            "median_refresh_s": statistics.median(
                [v for name in fast for v in seen[name]["duration"]] or [0.0]
            ),
            "always_up": all(ups[name] and min(ups[name]) == 1.0 for name in fast),
            "refreshes_min": min((listings[name] for name in fast), default=0),
        },
        "slow": {
            "names": slow,
            "max_age_s": worst(slow, "age"),
            "max_refresh_s": slow_refresh,
            "always_up": all(ups[name] and min(ups[name]) == 1.0 for name in slow),
            "refreshes": sum(listings[name] for name in slow),
            "refresh_over_budget": slow_refresh is not None and slow_refresh > budget,
        },
        "probe_max_age_s": max(probe_age) if probe_age else None,
        "simulators": {
            "processes": len(sims.procs),
            "cpu_s": after_sim_cpu - before_sim_cpu,
            "core_share": (after_sim_cpu - before_sim_cpu) / wall if wall else None,
        },
    }
    # A fast target is not delayed if its data is never older than its TTL, the time
    # between two scrapes and its own refresh allow, plus a second: data fetched at a
    # refresh's start is served until the first scrape after the TTL (which waits for the
    # next refresh) and, with --refresh.background, until that next refresh lands (one
    # refresh more). A scrape held up by the slow target serves older data than that.
    fast_refresh = out["fast"]["max_refresh_s"] or 0.0
    out["refresh_background"] = background(exporter_args)
    refreshes = 2 if out["refresh_background"] else 1
    out["fast"]["age_limit_s"] = plan.many_ttl_s + interval + refreshes * fast_refresh + 1.0
    s = out["scrapes"]
    log(
        f"    {s['n']} scrapes in {wall:.0f} s: median {s.get('p50_ms', 0) / 1000:.2f} s,"
        f" p95 {s.get('p95_ms', 0) / 1000:.2f} s, max {s.get('max_ms', 0) / 1000:.2f} s,"
        f" {s.get('over_2s', 0)} of 2 s or more; probes median"
        f" {out['probes'].get('p50_ms', 0):.0f} ms, max {out['probes'].get('max_ms', 0):.0f} ms;"
        f" {len(failures)} failed"
    )
    log(
        f"    exporter CPU {cpu:.1f} s ({out['cpu']['core_share']:.0%} of a core),"
        f" {cycles:.1f} refresh cycles: {out['cpu']['per_cycle_s'] or 0:.2f} s a cycle;"
        f" peak RSS {rss['peak']:.0f} MiB; simulators"
        f" {out['simulators']['core_share']:.0%} of a core"
    )
    log(
        f"    fast targets: data age max {out['fast']['max_age_s'] or 0:.1f} s, refresh max"
        f" {out['fast']['max_refresh_s'] or 0:.2f} s, always up {out['fast']['always_up']};"
        f" slow: refresh {slow_refresh or 0:.1f} s (budget {budget:g} s), age max"
        f" {out['slow']['max_age_s'] or 0:.1f} s, always up {out['slow']['always_up']}"
    )
    return out
