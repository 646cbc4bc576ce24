"""The benchmark: the exporter against the limit, a naive exporter and itself, by fleet size.

    python -m bench                    # 1k, 10k and 50k instances, then 20 x 5k: 6-7 minutes
    python -m bench --quick            # 1k instances, fewer scrapes, no 20 x 5k: ~20 seconds
    python -m bench --sizes 1000,5000  # any sizes
    python -m bench --many-only        # only 20 targets of 5k in one exporter: ~2 minutes

For each size, one simulated fleet (`exporter.simulator`, standing still so that its pages
are cached) and, one after the other, as separate processes on 127.0.0.1:

- the exporter with a long `--cache-ttl`: hot scrapes, in three variants (plain text,
  OpenMetrics as Prometheus asks for it, OpenMetrics + gzip as Prometheus really scrapes),
  back to back and then each the first scrape of a new second;
- the limit: the same bytes, fetched once from the exporter, served by a static WSGI app
  on the same prometheus_client server, scraped in turn with the exporter;
- the exporter with a 1 s `--cache-ttl` and `--no-refresh.background` (each scrape
  waits for its refresh): cold scrapes (fetch, parse, render after the
  cache expired) with the fleet unchanged, then each after 5 % of it changed, between
  two runs of the fetch floor (`bench.fetch`: the same pages downloaded, nothing parsed);
  then bursts of 50 scrapers counting upstream listings per TTL window;
- `bench/naive_exporter.py`, which refetches everything on every scrape.

Then, once (`--many`, not with `--quick` unless asked), 20 projects of 5,000 notebooks in
one exporter, one of them slower to list than the refresh budget (`bench.many`).

It prints the tables, the ratios and the targets (issue #17, "Scale"), and writes
`bench/results.json`, `docs/performance.png` and the results block of
`docs/performance.md`.

The parts: `bench.plan` (the variants, how much to measure), `bench.measure` (the
measurements at one size), `bench.fetch` (the fetch floor), `bench.many` and
`bench.simulators` (many targets in one process), `bench.report` (tables, targets, the
Markdown block), `bench.plot` (the figure), `bench.procs` (child processes, the scrape
client, /proc); this module is the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/run.py`: make the repository importable
    sys.path.append(str(Path(__file__).resolve().parent.parent))

from bench.many import run_many
from bench.measure import measure_size
from bench.plan import FULL, QUICK
from bench.plot import plot
from bench.procs import ROOT, machine
from bench.report import SIZES, growth, many_table, table, targets, update_doc
from exporter import __version__

RESULTS = ROOT / "bench" / "results.json"
PLOT = ROOT / "docs" / "performance.png"
DOC = ROOT / "docs" / "performance.md"


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
        help=f"results file (default {RESULTS.relative_to(ROOT)}; none with --quick,"
        " --many-only or --exporter-arg)",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        help=f"plot file (default {PLOT.relative_to(ROOT)}; none with --quick, --many-only"
        " or --exporter-arg)",
    )
    parser.add_argument(
        "--doc",
        type=Path,
        help=f"Markdown file whose bench block to update (default {DOC.relative_to(ROOT)};"
        " none with --quick, --many-only or --exporter-arg)",
    )
    parser.add_argument(
        "--exporter-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for the exporter, e.g. --exporter-arg=--no-metrics.per-instance",
    )
    parser.add_argument(
        "--many",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run 20 targets of 5,000 notebooks in one exporter, one of them slow"
        " (default: yes, but not with --quick)",
    )
    parser.add_argument(
        "--many-only",
        action="store_true",
        help="only the 20 targets of 5,000 notebooks (writes no file unless asked)",
    )
    parser.add_argument(
        "--many-ttl",
        type=float,
        help=f"--cache-ttl of the many-targets exporter (default {FULL.many_ttl_s:g} s)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.many_ttl:
        plan = replace(plan, many_ttl_s=args.many_ttl)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else None
    sizes = sizes or ([1_000] if args.quick else list(SIZES))
    many = args.many_only or (args.many if args.many is not None else not args.quick)
    if args.many_only:
        sizes = []
    official = not (args.quick or args.exporter_arg or args.many_only)  # the repository's files
    json_path = args.json or (RESULTS if official else None)
    plot_path = args.plot or (PLOT if official else None)
    doc_path = args.doc or (DOC if official else None)

    started = time.perf_counter()
    load_before = os.getloadavg()  # what else ran on the machine (1, 5, 15 minutes)
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
    many_result = None
    if many:
        print(f"{plan.many_targets} targets of {plan.many_instances:,} instances", flush=True)
        many_result = run_many(
            plan, args.seed, lambda s: print(s, flush=True), tuple(args.exporter_arg)
        )
    report: dict[str, Any] = {
        "meta": {
            "exporter_version": __version__,
            **code,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "python": platform.python_version(),
            "machine": machine(),
            "plan": asdict(replace(plan)),
            "exporter_args": args.exporter_arg,
            "seconds": time.perf_counter() - started,
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "sizes": results,
        "growth": growth(results),
        "many": many_result,
        "targets": targets(results, many_result),
    }
    print()
    if results:
        print(table(results))
        print()
    if many_result:
        print("\n".join(many_table(many_result)))
        print()
    for t in report["targets"]:
        value = f": {t['value']}" if "value" in t else ""
        print(f"  [{t['status']:>12}] {t['target']}{value}")
    print(
        f"\n{report['meta']['seconds']:.0f} s in all; load average before"
        f" {load_before[0]:.2f}, after {report['meta']['loadavg_after'][0]:.2f}"
    )
    if json_path:
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {json_path}")
    if plot_path and results:
        try:
            plot(results, plot_path)
            print(f"wrote {plot_path}")
        except ImportError:
            print("no plot: matplotlib is missing (pip install -e '.[bench]')", file=sys.stderr)
    if doc_path and results and update_doc(doc_path, report):
        print(f"updated {doc_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
