"""The chart's monitoring objects: ServiceMonitor, PrometheusRule, dashboards, NOTES, docs.

Rendered by the real Helm engine; see chart.py. A missing tool fails these tests."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from tests.deploy.chart import (
    ALL_OPTIONS,
    CHART,
    CORE_KINDS,
    DASHBOARD_OPTIONS,
    EXAMPLES,
    FULLNAME,
    KUBE_VERSIONS,
    NAMESPACE,
    PORT,
    RELEASE,
    ROOT,
    RULE_OPTIONS,
    TARGET_OPTIONS,
    WORKLOAD_OPTIONS,
    chart_values,
    chart_yaml,
    dashboard_sources,
    load_script,
    merged,
    notes,
    one,
    render,
    render_error,
    render_raw,
    rule_sources,
    run_script,
    source_groups,
    targets_config_map,
)
from tests.support.tools import require_tool

# -- ServiceMonitor ----------------------------------------------------------------------


def test_service_monitor() -> None:
    objects = render(WORKLOAD_OPTIONS)
    monitor, service = one(objects, "ServiceMonitor"), one(objects, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    assert set(spec) == {"jobLabel", "selector", "namespaceSelector", "endpoints"}
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    # job="modelarts-exporter" whatever the release is called
    assert service["metadata"]["labels"][spec["jobLabel"]] == "modelarts-exporter"
    assert spec["endpoints"] == [
        {
            "port": service["spec"]["ports"][0]["name"],
            "path": "/metrics",
            "scheme": "http",
            "interval": "1m",
            "scrapeTimeout": "15s",
            "honorLabels": False,
            "relabelings": WORKLOAD_OPTIONS["serviceMonitor"]["relabelings"],
            "metricRelabelings": WORKLOAD_OPTIONS["serviceMonitor"]["metricRelabelings"],
        }
    ]


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h)", duration))


def test_default_scrape_timeout_fits_the_interval_and_the_refresh_budget() -> None:
    monitor = chart_values()["serviceMonitor"]
    from exporter.config.settings import Settings

    budget = Settings.model_fields["refresh_budget"].default
    assert budget < _seconds(monitor["scrapeTimeout"]) <= _seconds(monitor["interval"])


def test_service_monitor_in_another_namespace_still_finds_the_service() -> None:
    objects = render(
        {"serviceMonitor": {"enabled": True, "namespace": "prometheus", "interval": ""}}
    )
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["namespace"] == "prometheus"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert "interval" not in monitor["spec"]["endpoints"][0]


TARGET_LABEL = {"sourceLabels": ["__param_target"], "targetLabel": "target", "action": "replace"}


def test_probe_service_monitor_scrapes_each_target_on_its_own() -> None:
    relabelings = [{"targetLabel": "cluster", "replacement": "prod-1"}]
    metric_relabelings = [{"sourceLabels": ["__name__"], "regex": "go_.*", "action": "drop"}]
    values = merged(
        TARGET_OPTIONS,
        {
            "serviceMonitor": {
                "interval": "1m",
                "relabelings": relabelings,
                "metricRelabelings": metric_relabelings,
            }
        },
    )
    monitor = one(render(values), "ServiceMonitor")
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"  # one job for all
    assert monitor["spec"]["endpoints"] == [
        {
            "port": "metrics",
            "path": "/probe",
            "params": {"target": [target["name"]]},
            "scheme": "http",
            "interval": "1m",
            "scrapeTimeout": "10s",
            "honorLabels": False,
            # The target label first, so the user's relabelings can use it.
            "relabelings": [TARGET_LABEL, *relabelings],
            "metricRelabelings": metric_relabelings,
        }
        for target in TARGET_OPTIONS["targets"]
    ]


def test_targets_without_probe_targets_are_scraped_together_at_metrics() -> None:
    values = merged(TARGET_OPTIONS, {"serviceMonitor": {"probeTargets": False}})
    (endpoint,) = one(render(values), "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert "params" not in endpoint and "relabelings" not in endpoint


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def scrape_config(job: str, endpoint: dict[str, Any], address: str) -> dict[str, Any]:
    """The Prometheus scrape config the Prometheus Operator makes of an endpoint: its own
    relabelling first (the job from the Service's label), then the endpoint's."""
    assert set(endpoint) <= {
        "port", "path", "params", "scheme", "interval", "scrapeTimeout", "honorLabels",
        "relabelings",
    }, "a field this translation does not know"  # fmt: skip
    return {
        "job_name": job,
        "metrics_path": endpoint["path"],
        "params": endpoint.get("params", {}),
        "scheme": endpoint["scheme"],
        "honor_labels": endpoint["honorLabels"],
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "static_configs": [{"targets": [address]}],
        "relabel_configs": [{"target_label": "job", "replacement": "modelarts-exporter"}]
        + [{_snake(k): v for k, v in r.items()} for r in endpoint.get("relabelings", [])],
    }


def test_prometheus_scrapes_the_rendered_probe_endpoints(tmp_path: Path) -> None:
    """The rendered targets file runs a real exporter over two simulated projects, and a
    real Prometheus scrapes it as the rendered ServiceMonitor says: each target once, in
    one job, told apart by the target label."""
    import time
    import urllib.parse
    import urllib.request

    from exporter.simulator import DEMO_AK, DEMO_SK, Fleet, Simulator
    from tests.support.processes import exporter_process
    from tests.support.prometheus import prometheus_server

    projects = {"alpha": "a" * 32, "beta": "b" * 32}
    sizes = {"alpha": 4, "beta": 7}
    with (
        Simulator(Fleet(size=sizes["alpha"], seed=1), project_id=projects["alpha"]) as alpha,
        Simulator(Fleet(size=sizes["beta"], seed=2), project_id=projects["beta"]) as beta,
    ):
        values = {
            "auth": {"mode": "aksk", "existingSecret": "simulator-keys"},
            "targets": [
                # The historical API only: the fleets' own notebooks, `sizes` of them (the
                # newer API adds the simulator's exhibits of its own).
                {
                    "name": name,
                    "project_id": projects[name],
                    "endpoint": sim.url,
                    "api": "demanager",
                }
                for name, sim in (("alpha", alpha), ("beta", beta))
            ],
            "serviceMonitor": {"enabled": True, "probeTargets": True},
        }
        objects = render(values)
        targets_file = tmp_path / "targets.yml"
        targets_file.write_text(targets_config_map(objects)["data"]["targets.yml"])
        endpoints = one(objects, "ServiceMonitor")["spec"]["endpoints"]
        env = {"HUAWEICLOUD_SDK_AK": DEMO_AK, "HUAWEICLOUD_SDK_SK": DEMO_SK}
        with exporter_process("--config.file", str(targets_file), env=env) as exporter:
            address = exporter.url.removeprefix("http://")
            config = {
                "scrape_configs": [
                    scrape_config(f"serviceMonitor/{NAMESPACE}/{FULLNAME}/{i}", e, address)
                    for i, e in enumerate(endpoints)
                ]
            }
            with prometheus_server(config, tmp_path) as server:

                def query(expr: str) -> dict[tuple[str, ...], float]:
                    """(target, project_id, instance) of each series -> its value."""
                    url = f"{server.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
                    with urllib.request.urlopen(url, timeout=5) as response:
                        result = json.load(response)["data"]["result"]
                    keys = ("target", "project_id", "instance")
                    return {
                        tuple(r["metric"].get(k, "") for k in keys): float(r["value"][1])
                        for r in result
                    }

                deadline = time.monotonic() + 60
                notebooks: dict[tuple[str, ...], float] = {}
                while len(notebooks) < 2 and time.monotonic() < deadline:
                    assert server.process.poll() is None, server.log.read_text()
                    time.sleep(0.5)
                    with contextlib.suppress(OSError):  # not listening yet
                        notebooks = query(
                            "count by (target, project_id) (modelarts_notebook_instance_info)"
                        )
                up = query('up{job="modelarts-exporter"}')
                refreshed = query('modelarts_up{job="modelarts-exporter"}')
                log = server.log.read_text()
    assert notebooks == {(name, projects[name], ""): sizes[name] for name in projects}, log
    assert up == {(name, "", address): 1.0 for name in projects}, "one job, one up per target"
    assert refreshed == {(name, projects[name], address): 1.0 for name in projects}


# -- PrometheusRule ----------------------------------------------------------------------


def rule_groups(values: dict[str, Any]) -> list[dict[str, Any]]:
    rule = one(render(values), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule["spec"]) == {"groups"}
    return list(rule["spec"]["groups"])


def test_prometheus_rule_carries_the_project_rules() -> None:
    expected = source_groups() + RULE_OPTIONS["prometheusRule"]["extraGroups"]
    assert rule_groups(RULE_OPTIONS) == expected


def test_prometheus_rule_passes_promtool(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups(RULE_OPTIONS)}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in rule_groups(RULE_OPTIONS))
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_prometheus_rule_kinds_can_be_switched_off() -> None:
    sources = [rule for group in source_groups() for rule in group["rules"]]
    assert any("alert" in r for r in sources) and any("record" in r for r in sources)
    only_alerts = rule_groups({"prometheusRule": {"enabled": True, "recording": False}})
    only_records = rule_groups({"prometheusRule": {"enabled": True, "alerts": False}})
    alerts = [r for g in only_alerts for r in g["rules"]]
    records = [r for g in only_records for r in g["rules"]]
    assert alerts == [r for r in sources if "alert" in r]
    assert records == [r for r in sources if "record" in r]
    assert all(g["rules"] for g in only_alerts + only_records), "empty group"
    nothing = {"prometheusRule": {"enabled": True, "alerts": False, "recording": False}}
    assert "no rule to ship" in render_error(nothing)


def shipped_alerts(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rule_groups(values) for r in g["rules"] if "alert" in r}


def source_alerts() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in source_groups() for r in g["rules"] if "alert" in r}


def test_prometheus_rule_leaves_out_disabled_alerts() -> None:
    disabled = ["ModelArtsNotebookAutoStopSoon", "ModelArtsClockSkew"]
    alerts = shipped_alerts({"prometheusRule": {"enabled": True, "disabled": disabled}})
    assert set(alerts) == set(source_alerts()) - set(disabled)
    assert alerts == {n: r for n, r in source_alerts().items() if n not in disabled}
    # Every alert of a group left out: the group goes, not an empty one.
    notebook = [r["alert"] for g in source_groups() if g["name"] == "modelarts-notebooks"
                for r in g["rules"]]  # fmt: skip
    groups = rule_groups({"prometheusRule": {"enabled": True, "disabled": notebook}})
    assert "modelarts-notebooks" not in [g["name"] for g in groups]


@pytest.mark.parametrize("key", ["disabled", "customRules"])
def test_prometheus_rule_refuses_an_alert_it_does_not_ship(key: str) -> None:
    """An old name (the alerts were renamed) must not be silently ignored."""
    value = ["NotebookFailed"] if key == "disabled" else {"FlavorSoldOut": {"for": "1h"}}
    error = render_error({"prometheusRule": {"enabled": True, key: value}})
    assert "no shipped alert is called" in error and "CHANGELOG.md" in error


def header_threshold_keys() -> set[str]:
    """The `chart key` column of the threshold table at the top of alerts.yml."""
    header = (ROOT / "prometheus" / "alerts.yml").read_text().split("\ngroups:")[0]
    return set(re.findall(r"^#   ModelArts\w+ .* ([a-z][A-Za-z0-9]+)$", header, re.MULTILINE))


def test_threshold_values_are_those_of_the_rule_file() -> None:
    """The defaults render the shipped rules unchanged (test above); here: each key is
    listed in the table at the top of alerts.yml and each of its keys is a value."""
    thresholds = chart_values()["prometheusRule"]["thresholds"]
    assert header_threshold_keys() == set(thresholds)


# A value for each threshold, and what it must become in its alert.
THRESHOLDS = {
    "stuckInTransitionSeconds": (1200, "ModelArtsNotebookStuckInTransition", ["> 1200\n"]),
    "queuedTooLongSeconds": (3600, "ModelArtsNotebookQueuedTooLong", ["wait_seconds > 3600)"]),
    "queueNotMovingFor": ("1h", "ModelArtsNotebookQueueNotMoving", ["rank[1h]", "offset 1h)"]),
    "failedWithinSeconds": (259200, "ModelArtsNotebookFailed", ["seconds < 259200)"]),
    "autoStopSoonSeconds": (600, "ModelArtsNotebookAutoStopSoon", ["seconds < 600\n"]),
    "acceleratorWithoutAutoStopSeconds": (
        14400,
        "ModelArtsNotebookAcceleratorWithoutAutoStop",
        ["seconds > 14400)"],
    ),
    "failuresPerHour": (10, "ModelArtsNotebookFailuresHigh", ["> 10\n"]),
    # A backslash of the regular expression is doubled in the PromQL string.
    "freeFlavors": (
        r"modelarts\.vm\.(cpu|gpu)\.free",
        "ModelArtsFlavorSoldOut",
        [r'flavor!~"modelarts\\.vm\\.(cpu|gpu)\\.free"'],
    ),
    "queueWaitP90Seconds": (7200, "ModelArtsFlavorQueueWaitHigh", ["> 7200\n"]),
    "dataStaleSeconds": (600, "ModelArtsDataStale", ["> 600\n"]),
    "apiErrorRatio": (0.25, "ModelArtsAPIErrors", ["> 0.25\n"]),
    "clockSkewSeconds": (60, "ModelArtsClockSkew", ["> 60\n"]),
}


def test_every_threshold_is_tested() -> None:
    assert set(THRESHOLDS) == set(chart_values()["prometheusRule"]["thresholds"])


def test_thresholds_change_their_alert_and_nothing_else(tmp_path: Path) -> None:
    values = {key: value for key, (value, _, _) in THRESHOLDS.items()}
    alerts = shipped_alerts({"prometheusRule": {"enabled": True, "thresholds": values}})
    sources = source_alerts()
    changed = {alert for _, alert, _ in THRESHOLDS.values()}
    for key, (_, alert, fragments) in THRESHOLDS.items():
        for fragment in fragments:
            assert alerts[alert]["expr"].count(fragment) == 1, (key, alerts[alert]["expr"])
    for name in set(sources) - changed:
        assert alerts[name] == sources[name], name
    for name in changed:
        assert {k: v for k, v in alerts[name].items() if k not in ("expr", "annotations")} == {
            k: v for k, v in sources[name].items() if k not in ("expr", "annotations")
        }
    assert alerts["ModelArtsNotebookQueueNotMoving"]["annotations"]["description"].endswith(
        "throughout the last 1h."
    )
    promtool = require_tool("promtool")
    rules = tmp_path / "rules.yml"
    groups = rule_groups({"prometheusRule": {"enabled": True, "thresholds": values}})
    rules.write_text(yaml.safe_dump({"groups": groups}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_threshold_the_rules_lost_fails_the_render(tmp_path: Path) -> None:
    """A rule rewritten so that the chart cannot find its threshold is an error, not a
    threshold quietly ignored."""
    chart = tmp_path / "modelarts-exporter"
    shutil.copytree(CHART, chart)
    alerts = chart / "files" / "prometheus" / "alerts.yml"
    skew = "abs(modelarts_exporter_clock_skew_seconds)"
    alerts.write_text(alerts.read_text().replace(f"{skew} > 300", f"{skew} >= 300"))
    with helm.Chart.load(chart) as loaded, pytest.raises(helm.HelmError) as caught:
        loaded.render({"prometheusRule": {"enabled": True}}, name=RELEASE, namespace=NAMESPACE)
    assert "prometheusRule.thresholds.clockSkewSeconds" in str(caught.value)


def test_labels_annotations_for_severity_and_runbooks_of_the_alerts() -> None:
    values = {
        "prometheusRule": {
            "enabled": True,
            "additionalRuleLabels": {"team": "ml-platform", "severity": "ignored"},
            "additionalRuleAnnotations": {"dashboard": "https://grafana.example.com/d/x"},
            "customRules": {
                "ModelArtsNotebookFailed": {"for": "15m", "severity": "info"},
                "ModelArtsNotebookStuckInTransition": {"for": "10m"},
            },
            "runbookUrl": "https://wiki.example.com/modelarts/alerts",
        }
    }
    groups = rule_groups(values)
    sources = source_alerts()
    for group in groups:
        for rule in group["rules"]:
            if "record" in rule:
                assert "labels" not in rule, "recording rules are left as they are"
                continue
            name, source = rule["alert"], sources[rule["alert"]]
            assert rule["labels"]["team"] == "ml-platform"
            assert rule["annotations"]["dashboard"] == "https://grafana.example.com/d/x"
            url = f"https://wiki.example.com/modelarts/alerts#{name.lower()}"
            assert rule["annotations"]["runbook_url"] == url
            if name == "ModelArtsNotebookFailed":
                assert rule["for"] == "15m" and rule["labels"]["severity"] == "info"
            elif name == "ModelArtsNotebookStuckInTransition":
                assert rule["for"] == "10m"
                assert rule["labels"]["severity"] == source["labels"]["severity"]
            else:
                assert rule.get("for") == source.get("for"), name
                assert rule["labels"]["severity"] == source["labels"]["severity"], name


def matchers(rule_matchers: list[dict[str, str]]) -> list[str]:
    """AlertmanagerConfig matchers as Alertmanager's own config writes them."""
    return [f'{m["name"]}{m.get("matchType", "=")}"{m["value"]}"' for m in rule_matchers]


def docs_inhibit_rules() -> list[dict[str, Any]]:
    """The inhibit_rules of the alertmanager.yml example in docs/alerts.md."""
    text = (ROOT / "docs" / "alerts.md").read_text()
    for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL):
        doc = yaml.safe_load(block)
        if isinstance(doc, dict) and "inhibit_rules" in doc:
            return list(doc["inhibit_rules"])
    pytest.fail("docs/alerts.md has no alertmanager.yml example with inhibit_rules")


def test_alertmanager_config_holds_the_inhibitions_of_the_docs() -> None:
    assert not [o for o in render({"prometheusRule": {"enabled": True}})
                if o["kind"] == "AlertmanagerConfig"]  # fmt: skip
    values = {"prometheusRule": {"alertmanagerConfig": {"enabled": True, "labels": {"a": "b"}}}}
    config = one(render(values), "AlertmanagerConfig")
    assert config["apiVersion"] == "monitoring.coreos.com/v1alpha1"
    assert config["metadata"]["namespace"] == NAMESPACE and config["metadata"]["labels"]["a"] == "b"
    rules = config["spec"]["inhibitRules"]
    assert [
        {
            "source_matchers": matchers(r["sourceMatch"]),
            "target_matchers": matchers(r["targetMatch"]),
            "equal": r["equal"],
        }
        for r in rules
    ] == docs_inhibit_rules()
    alerts = set(source_alerts())
    for rule in rules:
        for matcher in rule["sourceMatch"] + rule["targetMatch"]:
            if matcher["name"] == "alertname":
                assert set(matcher["value"].split("|")) <= alerts, matcher


# -- dashboards --------------------------------------------------------------------------


def test_dashboards_are_config_maps_for_the_grafana_sidecar() -> None:
    sources = dashboard_sources()
    maps = [o for o in render(DASHBOARD_OPTIONS) if o["kind"] == "ConfigMap"]
    assert len(maps) == len(sources)
    shipped = {key: value for m in maps for key, value in m["data"].items()}
    assert {key: json.loads(value) for key, value in shipped.items()} == {
        path.name: json.loads(path.read_text()) for path in sources
    }
    for m in maps:
        assert m["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert m["metadata"]["annotations"] == {"grafana_folder": "ModelArts"}
        assert len(m["data"]) == 1


def test_dashboards_load_without_an_import_step() -> None:
    """The sidecar provisions files as they are: no `__inputs` to fill in, a fixed uid."""
    uids = []
    for path in dashboard_sources():
        dashboard = json.loads(path.read_text())
        assert "__inputs" not in dashboard, f"{path.name} needs Grafana's import dialog"
        assert "${DS_" not in path.read_text(), f"{path.name} refers to an import input"
        uids.append(dashboard.get("uid"))
    assert all(uids) and len(set(uids)) == len(uids), uids


def test_dashboard_label_is_configurable() -> None:
    dashboard_sources()
    values = {
        "dashboards": {
            "enabled": True,
            "label": "dashboards.example.com/grafana",
            "labelValue": "modelarts",
            "namespace": "grafana",
        }
    }
    for m in (o for o in render(values) if o["kind"] == "ConfigMap"):
        assert m["metadata"]["labels"]["dashboards.example.com/grafana"] == "modelarts"
        assert "grafana_dashboard" not in m["metadata"]["labels"]
        assert m["metadata"]["namespace"] == "grafana"


# -- chart copies of the rules and dashboards --------------------------------------------


def test_chart_copies_equal_the_sources() -> None:
    rule_sources()
    dashboard_sources()
    result = run_script("sync-chart-assets.py", "--check")
    assert result.returncode == 0, (
        "the chart's copies of prometheus/ and grafana/dashboards/ are stale; "
        "run scripts/sync-chart-assets.py\n" + result.stdout + result.stderr
    )


def test_sync_script_copies_rule_files_and_dashboards_only(tmp_path: Path) -> None:
    (tmp_path / "prometheus" / "tests").mkdir(parents=True)
    (tmp_path / "grafana" / "dashboards").mkdir(parents=True)
    files = tmp_path / "helm" / "modelarts-exporter" / "files"
    (tmp_path / "prometheus" / "alerts.yml").write_text(
        "# a comment\ngroups:\n  - name: a\n    rules: []\n"
    )
    (tmp_path / "prometheus" / "alerts_test.yml").write_text(
        "rule_files: [alerts.yml]\ntests: []\n"
    )
    (tmp_path / "prometheus" / "tests" / "t.yml").write_text("groups: []\n")
    (tmp_path / "grafana" / "dashboards" / "fleet.json").write_text('{"title": "Fleet"}\n')
    (files / "prometheus").mkdir(parents=True)
    (files / "prometheus" / "gone.yml").write_text("groups: []\n")

    root = ["--root", str(tmp_path)]
    assert run_script("sync-chart-assets.py", "--check", *root).returncode == 1
    assert run_script("sync-chart-assets.py", *root).returncode == 0
    copied = sorted(str(p.relative_to(files)) for p in files.rglob("*") if p.is_file())
    assert copied == ["grafana/dashboards/fleet.json", "prometheus/alerts.yml"]
    assert (files / "prometheus" / "alerts.yml").read_bytes() == (
        tmp_path / "prometheus" / "alerts.yml"
    ).read_bytes()
    assert run_script("sync-chart-assets.py", "--check", *root).returncode == 0

    (tmp_path / "grafana" / "dashboards" / "fleet.json").write_text('{"title": "Fleet v2"}\n')
    stale = run_script("sync-chart-assets.py", "--check", *root)
    assert stale.returncode == 1 and "fleet.json" in stale.stdout


# -- NOTES, examples, versions, docs -----------------------------------------------------


def test_notes_tell_how_to_reach_the_metrics() -> None:
    text = notes(
        {"config": {"projectId": "p", "region": "cn-north-4"}, "auth": {"existingSecret": "c"}}
    )
    assert f"kubectl --namespace {NAMESPACE} port-forward service/{FULLNAME} {PORT}:{PORT}" in text
    assert f"http://127.0.0.1:{PORT}/metrics" in text
    assert "WARNING" not in text


def test_notes_warn_about_missing_settings() -> None:
    text = notes()
    assert "config.projectId is not set" in text
    assert "neither config.region nor config.endpoint" in text
    assert "no credentials are configured" in text
    assert "WARNING" not in notes({"config": {"demo": True}})


def example_values() -> Iterator[tuple[str, dict[str, Any]]]:
    """Each example install: a file, or a project file over several-projects/common.yaml."""
    for path in sorted(EXAMPLES.glob("*.yaml")):
        yield path.name, yaml.safe_load(path.read_text())
    several = EXAMPLES / "several-projects"
    common = yaml.safe_load((several / "common.yaml").read_text())
    for path in sorted(several.glob("project-*.yaml")):
        yield f"several-projects/{path.name}", merged(common, yaml.safe_load(path.read_text()))


@pytest.mark.parametrize(
    ("name", "values"), [pytest.param(name, v, id=name) for name, v in example_values()]
)
def test_examples_render_and_validate(name: str, values: dict[str, Any]) -> None:
    objects = render(values)
    for obj in objects:
        if obj["kind"] in CORE_KINDS:
            kubernetes_validate.validate(obj, KUBE_VERSIONS[0], strict=True)
    assert "WARNING" not in notes(values), name


def test_several_projects_ship_rules_and_dashboards_once() -> None:
    projects = [values for name, values in example_values() if name.startswith("several-projects/")]
    assert len(projects) >= 2
    owners = [v for v in projects if v.get("prometheusRule", {}).get("enabled")]
    assert len(owners) == 1, "exactly one release ships the PrometheusRule"
    assert [v for v in projects if v.get("dashboards", {}).get("enabled")] == owners
    assert len({v["config"]["projectId"] for v in projects}) == len(projects)


def docs_yaml_blocks() -> list[list[dict[str, Any]]]:
    text = (ROOT / "docs" / "helm.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    return [[doc for doc in yaml.safe_load_all(block) if doc] for block in blocks]


def test_values_in_the_docs_are_valid_and_match_the_examples() -> None:
    blocks = docs_yaml_blocks()
    assert blocks
    with helm.Chart.load(CHART) as chart:
        for block in blocks:
            for values in block:
                chart.validate_schema(values)
    examples = dict(example_values())
    several = EXAMPLES / "several-projects"
    files = [
        yaml.safe_load((several / f).read_text())
        for f in ("common.yaml", "project-training.yaml", "project-research.yaml")
    ]
    assert [examples["kube-prometheus-stack.yaml"]] in blocks
    assert [examples["probe-servicemonitor.yaml"]] in blocks
    assert [examples["web-config.yaml"]] in blocks
    assert files in blocks


def test_packaged_chart_carries_the_rules_and_dashboards(tmp_path: Path) -> None:
    archive = helm.package(CHART, destination=tmp_path)
    assert Path(archive).name == f"modelarts-exporter-{chart_yaml()['version']}.tgz"
    with helm.Chart.load(archive) as chart:
        manifests = chart.render(ALL_OPTIONS, name=RELEASE, namespace=NAMESPACE)
    assert manifests == render_raw(ALL_OPTIONS)


def test_app_version_is_the_exporter_version() -> None:
    from exporter import __version__

    meta = chart_yaml()
    assert meta["apiVersion"] == "v2"
    assert meta["appVersion"] == __version__


def test_values_table_in_docs_is_up_to_date() -> None:
    result = run_script("helm-values-table.py", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_values_table_script_refuses_undocumented_keys(tmp_path: Path) -> None:
    chart = tmp_path / "helm" / "modelarts-exporter"
    shutil.copytree(CHART, chart)
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "helm.md", tmp_path / "docs" / "helm.md")
    assert run_script("helm-values-table.py", "--check", "--root", str(tmp_path)).returncode == 0

    values = chart / "values.yaml"
    values.write_text(values.read_text() + "\nsneaky: true\n")
    result = run_script("helm-values-table.py", "--check", "--root", str(tmp_path))
    assert result.returncode == 2 and "sneaky" in result.stderr

    values.write_text(
        values.read_text().replace("\nsneaky: true\n", "\n# -- Documented.\nsneaky: true\n")
    )
    result = run_script("helm-values-table.py", "--check", "--root", str(tmp_path))
    assert result.returncode == 2 and "not in values.schema.json" in result.stderr


def test_values_table_lists_every_documented_key() -> None:
    table = load_script("helm-values-table.py")
    rows = {row.key: row for row in table.rows(CHART)}
    assert rows["config.cacheTTL"].type == "number or null"
    assert rows["auth.mode"].default == '`"auto"`'
    assert "resources.requests.cpu" not in rows  # documented as a whole, under resources
    doc = (ROOT / "docs" / "helm.md").read_text()
    for key in rows:
        assert f"| `{key}` |" in doc
