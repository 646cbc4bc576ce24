#!/usr/bin/env python3
"""Copy the Prometheus rules and Grafana dashboards into the Helm chart.

Helm reads only files inside the chart directory, so the chart ships copies of
  prometheus/*.yml         -> helm/modelarts-exporter/files/prometheus/
  grafana/dashboards/*.json -> helm/modelarts-exporter/files/grafana/dashboards/
Of prometheus/*.yml only rule files are copied (a top-level `groups:`); promtool unit-test
files (a top-level `tests:` or `rule_files:`) stay out. Copies are byte for byte, and a copy
whose source is gone is deleted.

    scripts/sync-chart-assets.py          # update the chart's copies
    scripts/sync-chart-assets.py --check  # exit 1 if they differ from the sources

Run it after changing a rule file or a dashboard; the test suite runs --check.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART_FILES = Path("helm/modelarts-exporter/files")

_TOP_LEVEL_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:", re.MULTILINE)


def is_rule_file(path: Path) -> bool:
    """A Prometheus rule file, as opposed to a promtool unit-test file."""
    keys = set(_TOP_LEVEL_KEY.findall(path.read_text(encoding="utf-8")))
    return "groups" in keys and not keys & {"tests", "rule_files"}


@dataclass(frozen=True)
class Asset:
    source: Path  # relative to the repository root
    pattern: str
    destination: Path  # relative to the repository root
    accept: Callable[[Path], bool] = lambda path: True


ASSETS = (
    Asset(Path("prometheus"), "*.yml", CHART_FILES / "prometheus", is_rule_file),
    Asset(Path("grafana/dashboards"), "*.json", CHART_FILES / "grafana/dashboards"),
)


@dataclass(frozen=True)
class Change:
    action: str  # "copy" or "delete"
    path: Path  # the chart's copy
    source: Path | None = None

    def __str__(self) -> str:
        if self.action == "copy":
            return f"copy   {self.source} -> {self.path}"
        return f"delete {self.path} (its source is gone)"


def plan(root: Path) -> list[Change]:
    """What it takes to make the chart's copies equal the sources."""
    changes: list[Change] = []
    for asset in ASSETS:
        source_dir, dest_dir = root / asset.source, root / asset.destination
        wanted = {
            path.name: path
            for path in sorted(source_dir.glob(asset.pattern))
            if path.is_file() and asset.accept(path)
        }
        for name, source in wanted.items():
            copy = dest_dir / name
            if not copy.is_file() or copy.read_bytes() != source.read_bytes():
                changes.append(Change("copy", copy, source))
        for copy in sorted(dest_dir.glob(asset.pattern)):
            if copy.name not in wanted:
                changes.append(Change("delete", copy))
    return changes


def apply(changes: list[Change]) -> None:
    for change in changes:
        if change.action == "copy":
            assert change.source is not None
            change.path.parent.mkdir(parents=True, exist_ok=True)
            change.path.write_bytes(change.source.read_bytes())
        else:
            change.path.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if the copies are stale"
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)
    root = args.root.resolve()

    changes = plan(root)
    for change in changes:
        print(("stale: " if args.check else "") + str(change).replace(f"{root}/", ""))
    if args.check:
        if changes:
            print("the chart's copies are stale: run scripts/sync-chart-assets.py", file=sys.stderr)
            return 1
        return 0
    apply(changes)
    if not changes:
        print("the chart's copies are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
