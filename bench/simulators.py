"""Many simulated projects in a process of their own, for the many-targets run.

    python -m bench.simulators --count 20 --instances 5000 --slow 1 --slow-refresh 12

Starts `count` simulators on 127.0.0.1, each its own project (project id, access key pair,
fleet standing still, page cache built before it says it is ready), the last `slow` of
them with a latency per request such that one refresh of theirs takes about
`--slow-refresh` seconds (the exporter's round trips with its paging, counted from the
totals). It prints one JSON line, `{"targets": [...]}` (name, url, project_id, ak, sk,
slow, latency), then answers commands read from stdin, one JSON line each: `stats`
(each target's upstream listings and list requests, and this process's CPU seconds);
`quit` or the end of stdin stops it. Outside the benchmark's process, so that serving
20 projects does not share a GIL with the scraper measuring the exporter.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/simulators.py`: make the repository importable
    sys.path.append(str(Path(__file__).resolve().parent.parent))

from exporter.modelarts.client import FEATURES, ListQuery
from exporter.modelarts.notebooks import PAGE_SIZE as PAGE_SIZE_V2
from exporter.simulator import Fleet, Simulator


def project_id(index: int) -> str:
    return hashlib.md5(f"bench-project-{index}".encode()).hexdigest()  # a name, not a secret


def keys(index: int) -> tuple[str, str]:
    return f"BENCHAK{index:013d}", f"bench-secret-key-{index:04d}-".ljust(40, "0")


def round_trips(total: int, size: int, concurrency: int) -> int:
    """Sequential requests of the exporter's paging (ModelArtsClient._paginate): the
    first page, waves of `concurrency`, and one more page when the last one is full."""
    if total < size:
        return 1
    known = -(-total // size)
    waves = -(-(known - 1) // concurrency)
    return 1 + waves + (1 if total % size == 0 else 0)


def refresh_round_trips(sim: Simulator, page_size: int, concurrency: int) -> int:
    """One refresh's sequential requests against `sim` (both list APIs, default query)."""
    query = ListQuery()
    _, body = sim.list_page(query.params(0, 1))
    found = re.search(rb'"total_count":(\d+)', body)
    trips = round_trips(int(found.group(1)) if found else 0, page_size, concurrency)
    for feature in FEATURES:
        _, body = sim.notebooks_page(query.notebooks_params(0, feature))
        total = re.search(rb'"total":(\d+)}$', body)
        trips += round_trips(int(total.group(1)) if total else 0, PAGE_SIZE_V2, concurrency)
    return trips


def cpu_seconds() -> float:
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(
    count: int,
    instances: int,
    slow: int,
    slow_refresh: float,
    seed: int,
    page_size: int,
    concurrency: int,
    first: int = 0,
) -> tuple[list[Simulator], list[dict[str, Any]]]:
    sims: list[Simulator] = []
    targets: list[dict[str, Any]] = []
    for index in range(first, first + count):
        ak, sk = keys(index)
        is_slow = index >= first + count - slow
        sim = Simulator(
            Fleet(size=instances, seed=seed + index, evolve=False),
            project_id=project_id(index),
            ak=ak,
            sk=sk,
            seed=seed + index,
        )
        # Build the page cache now (every listing the exporter reads), not on its first refresh.
        trips = refresh_round_trips(sim, page_size, concurrency)
        if is_slow:
            sim.latency = slow_refresh / trips
        sims.append(sim.start())
        targets.append(
            {
                "name": f"{'slow' if is_slow else 'project'}-{index:02d}",
                "url": sim.url,
                "project_id": sim.project_id,
                "ak": ak,
                "sk": sk,
                "slow": is_slow,
                "latency": sim.latency,
                "round_trips": trips,
                "instances": instances,
            }
        )
    return sims, targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simulators")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--first", type=int, default=0, help="index of the first project")
    parser.add_argument("--instances", type=int, default=5000)
    parser.add_argument("--slow", type=int, default=1, help="how many (the last ones) are slow")
    parser.add_argument("--slow-refresh", type=float, default=12.0, help="seconds a refresh takes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--page-size", type=int, default=200)
    parser.add_argument("--page-concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sims, targets = start(
        args.count,
        args.instances,
        args.slow,
        args.slow_refresh,
        args.seed,
        args.page_size,
        args.page_concurrency,
        args.first,
    )
    ready = {"targets": targets, "seconds": time.perf_counter() - started}
    print(json.dumps(ready), flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "quit":
                break
            if command == "stats":
                stats = {
                    t["name"]: {"listings": s.stats.listings, "requests": s.stats.requests}
                    for t, s in zip(targets, sims, strict=True)
                }
                print(json.dumps({"stats": stats, "cpu_s": cpu_seconds()}), flush=True)
    finally:
        for sim in sims:
            sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
