"""Shared helpers for the tests of the Prometheus rules, the Grafana dashboards and compose.

Reading the rule files and dashboards, turning a dashboard's PromQL into plain PromQL the
way Grafana would (variables substituted), and walking PromQL with promql_parser.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from exporter.exposition.metrics import METRICS
from tests.support.tools import require_tool as require_tool

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "prometheus"
ALERTS_FILE = RULES_DIR / "alerts.yml"
RECORDING_FILE = RULES_DIR / "recording.yml"
RULE_FILES = (ALERTS_FILE, RECORDING_FILE)
RULE_TEST_DIR = RULES_DIR / "tests"
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
DASHBOARD_FILES = tuple(sorted(DASHBOARD_DIR.glob("*.json")))
COMPOSE_DIR = ROOT / "deploy" / "compose"

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# What a Grafana variable stands for when a dashboard query is checked or run outside
# Grafana: every query variable "All" (its allValue, ".*"), the built-in intervals a
# duration. RATE_INTERVAL is deliberately odd so the AST shows where it was used.
RATE_INTERVAL = "1h2m3s"
BUILTIN_INTERVALS = {"__rate_interval": RATE_INTERVAL, "__interval": "1m", "__range": "1h"}

# -- the real Prometheus server ------------------------------------------------------------


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def prometheus_server(config: dict[str, Any], directory: Path) -> Iterator[PrometheusServer]:
    """Debian's Prometheus on a free loopback port with `config`, stopped on the way out."""
    from tests.support.processes import free_port, stop

    binary = require_tool("prometheus")
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = directory / "prometheus.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        yield PrometheusServer(f"http://127.0.0.1:{port}", process, log)
    finally:
        stop(process)


# -- rules ------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules(path: Path) -> list[dict[str, Any]]:
    return [rule for group in load_yaml(path)["groups"] for rule in group["rules"]]


def alert_rules() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in rules(ALERTS_FILE) if "alert" in rule}


def recording_rule_names() -> set[str]:
    return {rule["record"] for path in RULE_FILES for rule in rules(path) if "record" in rule}


def rule_test_files() -> list[Path]:
    return sorted(RULE_TEST_DIR.glob("*.yml"))


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


# -- metric names -----------------------------------------------------------------------


@cache
def known_metric_names() -> frozenset[str]:
    """Metrics a query may use: the exporter's own, the recording rules' and `up`."""
    return frozenset({m.name for m in METRICS} | recording_rule_names() | {"up"})


def metric_names(expr: str) -> set[str]:
    """Every metric name a PromQL expression selects."""
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    names.add(m.value)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def range_selectors(expr: str) -> list[str]:
    """The range of every range selector (as a Prometheus duration) in an expression."""
    ranges: list[str] = []

    def visit(node: promql_parser.Expr) -> None:
        is_range = isinstance(node, promql_parser.MatrixSelector | promql_parser.SubqueryExpr)
        if is_range and node.range is not None:
            ranges.append(promql_parser.display_duration(node.range))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return ranges


# -- dashboards -------------------------------------------------------------------------


def load_dashboard(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows and the panels of collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def data_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return (p for p in all_panels(dashboard) if p["type"] != "row")


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # file stem
    panel: str
    ref_id: str
    expr: str  # as written in the dashboard

    @property
    def id(self) -> str:
        return f"{self.dashboard}:{self.panel}:{self.ref_id}"


def panel_queries(path: Path) -> list[PanelQuery]:
    dashboard = load_dashboard(path)
    return [
        PanelQuery(path.stem, panel["title"], target["refId"], target["expr"])
        for panel in data_panels(dashboard)
        for target in panel.get("targets", [])
    ]


def variable_query(variable: dict[str, Any]) -> str:
    query = variable.get("query", "")
    return query["query"] if isinstance(query, dict) else str(query)


_VAR = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]|\$(\w+)")


class UnknownVariable(KeyError):
    pass


def substitute(expr: str, dashboard: dict[str, Any]) -> str:
    """The expression as Grafana would send it with every variable on All.

    Query variables become their allValue (".*"), custom and constant ones their current
    value, the built-in intervals a duration. A variable the dashboard does not define
    raises UnknownVariable: Grafana would leave it in and Prometheus would reject it.
    """
    defined = variables(dashboard)

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3) or match.group(5)
        if name in BUILTIN_INTERVALS:
            return BUILTIN_INTERVALS[name]
        variable = defined.get(name)
        if variable is None:
            raise UnknownVariable(name)
        if variable["type"] == "query":
            return str(variable.get("allValue") or ".*")
        current = variable.get("current", {}).get("value")
        if current is None:
            raise UnknownVariable(f"{name} has no current value")
        return str(current)

    return _VAR.sub(value, expr)


def runnable(expr: str, dashboard: dict[str, Any]) -> str:
    """Substituted, with the rate interval a plain duration Prometheus can run now."""
    return substitute(expr, dashboard).replace(RATE_INTERVAL, "1m")


_LABEL_VALUES = re.compile(r"^label_values\((?:(.+),\s*)?([a-zA-Z_]\w*)\)\s*$", re.DOTALL)
_QUERY_RESULT = re.compile(r"^query_result\((.+)\)\s*$", re.DOTALL)


def variable_promql(query: str) -> tuple[str, str | None]:
    """(PromQL to run, label the variable reads or None) for a Prometheus variable query.

    `label_values(selector, label)` reads `label` from the series of `selector`;
    `query_result(expr)` reads the formatted result of `expr`.
    """
    if m := _LABEL_VALUES.match(query):
        if not m.group(1):
            raise ValueError(f"label_values without a metric scans every series: {query}")
        return m.group(1), m.group(2)
    if m := _QUERY_RESULT.match(query):
        return m.group(1), None
    raise ValueError(f"unsupported variable query: {query}")


def grafana_query_result_text(sample: dict[str, Any]) -> str:
    """A query_result() option as Grafana formats it: name{k="v",...} value timestamp_ms."""
    labels = dict(sample["metric"])
    name = labels.pop("__name__", "")
    body = ",".join(f'{k}="{v}"' for k, v in labels.items())
    ts, value = sample["value"]
    return f"{name}{{{body}}} {value} {int(float(ts) * 1000)}"


def js_regex(pattern: str) -> re.Pattern[str]:
    """A Grafana variable regex (/.../ JavaScript syntax) as a Python pattern."""
    assert pattern.startswith("/") and pattern.rstrip("gimsuy").endswith("/"), pattern
    body = pattern[1 : pattern.rstrip("gimsuy").rfind("/")]
    return re.compile(body.replace("(?<", "(?P<").replace("(?P<=", "(?<=").replace("(?P<!", "(?<!"))
