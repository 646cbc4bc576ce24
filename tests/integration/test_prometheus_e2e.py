"""End to end: the real Prometheus scrapes the demo exporter with the project's rules loaded.

Every query of every dashboard panel and variable must run and return data, every rule
must evaluate without error, and the demo fleet must trigger the alerts it was built to
trigger, with fully rendered annotations.

The demo runs with a region (for the dashboards' region variable) and a 1-second cache, so
that the status-transition counter, which exists only once a notebook changed status
between two listings, appears within the run: the demo fleet's first change comes about
25 seconds after it starts. The queue-wait histogram has its (empty) series from the first
listing; its quantiles are NaN until a notebook leaves a queue, minutes into the demo.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import exporter_process
from tests.support.prometheus import (
    DASHBOARD_FILES,
    RULE_FILES,
    alert_rules,
    grafana_query_result_text,
    js_regex,
    load_dashboard,
    panel_queries,
    prometheus_server,
    recording_rule_names,
    rules,
    runnable,
    variable_promql,
    variable_query,
    variables,
)

WAIT = 60.0  # seconds any one wait may take
JOB = "modelarts-exporter"
DEMO = ("--demo", "--region", "cn-north-4", "--cache-ttl", "1")


@dataclass
class Prometheus:
    url: str
    log: Path

    def api(self, path: str, **params: str) -> Any:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as err:  # 400/422: the error is in the body
            body = json.load(err)
        assert body["status"] == "success", f"{path} {params}: {body.get('error')}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data["resultType"]
        return list(data["result"])

    def wait_for(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except (OSError, AssertionError):
                pass
            time.sleep(0.5)
        pytest.fail(f"timed out after {WAIT:.0f}s waiting for {what}\n{self.log_tail()}")

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    tmp = tmp_path_factory.mktemp("prometheus")
    with exporter_process(*DEMO) as exporter:
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(p) for p in RULE_FILES],
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "static_configs": [{"targets": [exporter.url.removeprefix("http://")]}],
                }
            ],
        }
        with prometheus_server(config, tmp) as server:
            prom = Prometheus(server.url, server.log)
            prom.wait_for("Prometheus to be ready", lambda: _ready(prom, server.process))
            # Enough samples for every rate() and for every rule to have been evaluated.
            prom.wait_for(
                "5 scrapes of the exporter",
                lambda: _value(prom, f'count_over_time(modelarts_up{{job="{JOB}"}}[1m])') >= 5,
            )
            prom.wait_for("every rule to be evaluated", lambda: _all_rules_evaluated(prom))
            prom.wait_for(
                "a status change of the demo fleet",
                lambda: bool(prom.query("rate(modelarts_notebook_status_transitions_total[1m])")),
            )
            yield prom


def _ready(prom: Prometheus, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        pytest.fail(f"prometheus exited with {process.returncode}\n{prom.log_tail()}")
    with urllib.request.urlopen(prom.url + "/-/ready", timeout=2) as r:
        return r.status == 200


def _value(prom: Prometheus, expr: str) -> float:
    result = prom.query(expr)
    return float(result[0]["value"][1]) if result else 0.0


def _loaded_rules(prom: Prometheus) -> list[dict[str, Any]]:
    return [rule for group in prom.api("rules")["groups"] for rule in group["rules"]]


def _all_rules_evaluated(prom: Prometheus) -> bool:
    loaded = _loaded_rules(prom)
    return bool(loaded) and all(r["health"] != "unknown" for r in loaded)


PANEL_QUERIES = [q for path in DASHBOARD_FILES for q in panel_queries(path)]
VARIABLES = [
    (path, name)
    for path in DASHBOARD_FILES
    for name, var in variables(load_dashboard(path)).items()
    if var["type"] == "query"
]


@pytest.mark.parametrize("q", PANEL_QUERIES, ids=lambda q: q.id)
def test_panel_query_returns_data(prometheus: Prometheus, q):
    dashboard = load_dashboard(next(p for p in DASHBOARD_FILES if p.stem == q.dashboard))
    expr = runnable(q.expr, dashboard)
    result = prometheus.query(expr)
    assert result, f"no data for {q.id}:\n{expr}"


@pytest.mark.parametrize(("path", "name"), VARIABLES, ids=[f"{p.stem}:{n}" for p, n in VARIABLES])
def test_variable_query_returns_options(prometheus: Prometheus, path: Path, name: str):
    dashboard = load_dashboard(path)
    var = variables(dashboard)[name]
    expr, label = variable_promql(runnable(variable_query(var), dashboard))
    result = prometheus.query(expr)
    if label is not None:  # label_values(selector, label)
        options = {s["metric"][label] for s in result if label in s["metric"]}
    else:  # query_result(expr), then the variable's regex as Grafana applies it
        texts = [grafana_query_result_text(s) for s in result]
        regex = js_regex(var["regex"]) if var.get("regex") else None
        options = {m.group("value") for t in texts if regex and (m := regex.search(t))}
        assert len(options) == len(result), f"regex {var['regex']} misses some of {texts[:3]}"
    assert options, f"variable {name} of {path.name} has no options: {expr}"


ANNOTATIONS = [
    (path, annotation["name"])
    for path in DASHBOARD_FILES
    for annotation in load_dashboard(path)["annotations"]["list"]
    if not annotation.get("builtIn")
]


@pytest.mark.parametrize(
    ("path", "name"), ANNOTATIONS, ids=[f"{p.stem}:{n}" for p, n in ANNOTATIONS]
)
def test_annotation_query_runs(prometheus: Prometheus, path: Path, name: str):
    """Every annotation query runs; those of the fleet's alerts find the demo's."""
    dashboard = load_dashboard(path)
    annotation = next(a for a in dashboard["annotations"]["list"] if a.get("name") == name)
    result = prometheus.query(runnable(annotation["expr"], dashboard))
    if path.stem != "modelarts-exporter":  # the demo's exporter is healthy
        assert result, f"no firing alert for the annotations of {path.name}"


def test_every_rule_is_loaded_and_healthy(prometheus: Prometheus):
    loaded = _loaded_rules(prometheus)
    expected = [r.get("alert") or r.get("record") for path in RULE_FILES for r in rules(path)]
    assert sorted(r["name"] for r in loaded) == sorted(expected)
    unhealthy = {r["name"]: r.get("lastError") for r in loaded if r["health"] != "ok"}
    assert not unhealthy, unhealthy


def test_every_recording_rule_produces_data(prometheus: Prometheus):
    for name in sorted(recording_rule_names()):
        prometheus.wait_for(f"data from {name}", lambda name=name: bool(prometheus.query(name)))


def test_demo_triggers_the_notebook_alerts_with_rendered_annotations(prometheus: Prometheus):
    """The demo fleet has auto-stops due and failures; nothing is broken, and its sold-out
    flavor is a free one, which does not alert."""
    alerts = prometheus.api("alerts")["alerts"]
    active = {a["labels"]["alertname"] for a in alerts}
    assert {"ModelArtsNotebookAutoStopSoon", "ModelArtsNotebookFailed"} <= active, active
    healthy_exporter = {
        "ModelArtsExporterDown",
        "ModelArtsDataStale",
        "ModelArtsAPIErrors",
        "ModelArtsAuthFailing",
        "ModelArtsCredentialRequestsFailing",
        "ModelArtsClockSkew",
    }
    assert not active & healthy_exporter, active
    free_sold_out = 'modelarts_notebook_flavor_sold_out{flavor=~".*free.*"} == 1'
    assert prometheus.query(free_sold_out), "the demo has a sold-out free flavor"
    assert "ModelArtsFlavorSoldOut" not in active, "free flavors are sold out as a rule"

    rules = alert_rules()
    per_notebook = {n for n, r in rules.items() if "group_left (name, user_name" in r["expr"]}
    for alert in alerts:
        labels, annotations = alert["labels"], alert["annotations"]
        assert labels["alertname"] in rules, labels
        text = annotations["summary"] + annotations["description"]
        assert "<no value>" not in text and "%!" not in text, (labels["alertname"], text)
        assert annotations["runbook_url"].endswith("#" + labels["alertname"].lower())
        if labels["alertname"] in per_notebook:
            assert labels["name"] and labels["user_name"] and labels["project_id"], labels
            assert labels["name"] in annotations["description"]
    failed = [a for a in alerts if a["labels"]["alertname"] == "ModelArtsNotebookFailed"]
    assert any("error code " in a["annotations"]["description"] for a in failed), failed
