"""The Prometheus rules: valid, unit-tested alert by alert, and the tests bite."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import promql_parser
import pytest

from exporter.exposition.metrics import METRICS
from tests.support.prometheus import (
    ALERTS_FILE,
    RECORDING_FILE,
    ROOT,
    RULE_FILES,
    RULE_TEST_DIR,
    alert_rules,
    load_yaml,
    metric_names,
    recording_rule_names,
    require_tool,
    rule_test_files,
    rules,
    run,
)

REQUIRED_ALERTS = {
    "ModelArtsNotebookStuckInTransition": "warning",
    "ModelArtsNotebookQueuedTooLong": "warning",
    "ModelArtsNotebookQueueNotMoving": "warning",
    "ModelArtsNotebookFailed": "warning",
    "ModelArtsNotebookAutoStopSoon": "info",
    "ModelArtsNotebookAcceleratorWithoutAutoStop": "warning",
    "ModelArtsNotebookFailuresHigh": "warning",
    "ModelArtsFlavorSoldOut": "warning",
    "ModelArtsFlavorQueueWaitHigh": "warning",
    "ModelArtsExporterDown": "critical",
    "ModelArtsDataStale": "warning",
    "ModelArtsAPIErrors": "warning",
    "ModelArtsAuthFailing": "critical",
    "ModelArtsCredentialRequestsFailing": "critical",
    "ModelArtsClockSkew": "warning",
}
# Alerts about one notebook: their descriptions name it, its user and its project.
NOTEBOOK_ALERTS = {
    "ModelArtsNotebookStuckInTransition",
    "ModelArtsNotebookQueuedTooLong",
    "ModelArtsNotebookQueueNotMoving",
    "ModelArtsNotebookFailed",
    "ModelArtsNotebookAutoStopSoon",
    "ModelArtsNotebookAcceleratorWithoutAutoStop",
}
# Alerts where one evaluation can be noise: each has a `for`.
NEEDS_FOR = {
    "ModelArtsNotebookFailed",
    "ModelArtsFlavorSoldOut",
    "ModelArtsExporterDown",
    "ModelArtsDataStale",
    "ModelArtsAPIErrors",
    "ModelArtsAuthFailing",
    "ModelArtsCredentialRequestsFailing",
    "ModelArtsClockSkew",
}
RUNBOOK_BASE = "https://github.com/modelarts-exporter/modelarts-exporter/blob/main/docs/alerts.md"


def exported_series_names() -> set[str]:
    """The names of the exporter's series: a histogram's are its _bucket, _count and _sum."""
    names = set()
    for metric in METRICS:
        if metric.type == "histogram":
            names |= {f"{metric.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
        else:
            names.add(metric.name)
    return names


def test_promtool_check_rules():
    promtool = require_tool("promtool")
    result = run(promtool, "check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    found = [int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", result.stdout)]
    assert found == [len(rules(path)) for path in RULE_FILES], result.stdout


def test_promtool_unit_tests_pass():
    promtool = require_tool("promtool")
    files = rule_test_files()
    assert files, f"no promtool unit tests in {RULE_TEST_DIR}"
    result = run(promtool, "test", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files), result.stdout


def test_required_alerts_exist_with_severity_and_annotations():
    alerts = alert_rules()
    assert set(REQUIRED_ALERTS) <= set(alerts), set(REQUIRED_ALERTS) - set(alerts)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] == REQUIRED_ALERTS.get(name, rule["labels"]["severity"])
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        annotations = rule["annotations"]
        assert annotations.get("summary") and annotations.get("description"), name


@pytest.mark.parametrize("name", sorted(NOTEBOOK_ALERTS))
def test_notebook_alerts_name_the_notebook_user_and_project(name):
    rule = alert_rules()[name]
    assert "modelarts_notebook_instance_info" in rule["expr"], "name comes from instance_info"
    assert "group_left (name, user_name" in rule["expr"]
    text = rule["annotations"]["summary"] + rule["annotations"]["description"]
    for label in ("name", "user_name", "project_id", "id"):
        assert f"$labels.{label} " in text, f"{name} does not mention {label}"


def test_alerts_use_only_exporter_metrics_and_up_and_no_recording_rule():
    """alerts.yml works without recording.yml, against the metrics the exporter serves."""
    allowed = exported_series_names() | {"up"}
    for name, rule in alert_rules().items():
        used = metric_names(rule["expr"])
        assert used, name
        assert used <= allowed, f"{name} uses {used - allowed}"
    assert not recording_rule_names() & set(ALERTS_FILE.read_text().split())


def _job_matchers(expr: str) -> list[str]:
    found: list[str] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.extend(str(m) for m in node.matchers.matchers if m.name == "job")

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def test_no_rule_names_the_scrape_job():
    """Any job name works: the exporter's targets are recognised by what they serve."""
    for path in RULE_FILES:
        for rule in rules(path):
            assert not _job_matchers(rule["expr"]), rule.get("alert") or rule["record"]
    down = alert_rules()["ModelArtsExporterDown"]["expr"]
    assert "up == 0" in down and "modelarts_exporter_build_info" in down
    assert "modelarts_up == 0" in down


def test_alert_specifics():
    alerts = alert_rules()
    stuck = alerts["ModelArtsNotebookStuckInTransition"]
    assert "modelarts_notebook_instance_updated_timestamp_seconds" in stuck["expr"]
    assert "for" not in stuck, "the update time survives restarts; a `for` would not"
    for status in ("CREATING", "STARTING", "RESTARTING", "STOPPING", "RESIZING"):
        assert status in stuck["expr"]
    assert re.search(r"code!~\"2\.\.\"", alerts["ModelArtsAPIErrors"]["expr"])
    assert '{code=~"401|403"}' in alerts["ModelArtsAuthFailing"]["expr"]
    assert '{code!~"2.."}' in alerts["ModelArtsCredentialRequestsFailing"]["expr"]
    assert 'flavor!~".*free.*"' in alerts["ModelArtsFlavorSoldOut"]["expr"]
    failures = alerts["ModelArtsNotebookFailuresHigh"]["expr"]
    assert "modelarts_notebook_status_transitions_total" in failures
    assert "CREATE_FAILED|START_FAILED" in failures
    assert "histogram_quantile(0.9" in alerts["ModelArtsFlavorQueueWaitHigh"]["expr"]
    guard = alerts["ModelArtsNotebookAcceleratorWithoutAutoStop"]["expr"]
    assert 'resource=~"gpu|npu"' in guard and "auto_stop_enabled == 1" in guard
    assert "updated_timestamp_seconds" in alerts["ModelArtsNotebookFailed"]["expr"]


def test_every_alert_has_the_prefix_a_runbook_and_a_for_where_noise_is_possible():
    docs = (ROOT / "docs" / "alerts.md").read_text()
    for name, rule in alert_rules().items():
        assert name.startswith("ModelArts"), f"{name} lacks the common ModelArts prefix"
        # GitHub's anchor of the "### <name>" heading of docs/alerts.md.
        assert rule["annotations"]["runbook_url"] == f"{RUNBOOK_BASE}#{name.lower()}", name
        assert re.search(rf"^### {name}$", docs, re.MULTILINE), f"no section for {name}"
        if name in NEEDS_FOR:
            assert rule.get("for"), f"{name} fires on a single evaluation"


def test_alerts_keep_the_labels_of_the_exporter_series():
    """Aggregations use `without`, so namespace, pod or target labels reach Alertmanager
    (its inhibitions and the Prometheus Operator's namespace matcher need them)."""
    for name, rule in alert_rules().items():
        assert not re.search(r"\b(sum|max|min|avg|count) by\b", rule["expr"]), name


def test_recording_rules_follow_the_naming_convention():
    names = recording_rule_names()
    assert names
    for name in names:
        level, metric, operation = name.split(":")
        assert level and metric.startswith("modelarts_") and operation, name


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    firing: dict[str, int] = {}
    quiet: dict[str, int] = {}
    alerts = alert_rules()
    for path in rule_test_files():
        doc = load_yaml(path)
        for group in doc["tests"]:
            for case in group.get("alert_rule_test", []):
                name = case["alertname"]
                assert name in alerts, f"{path.name} tests unknown alert {name}"
                bucket = firing if case.get("exp_alerts") else quiet
                bucket[name] = bucket.get(name, 0) + 1
                for expected in case.get("exp_alerts") or []:
                    assert expected["exp_labels"]["severity"] == alerts[name]["labels"]["severity"]
                    assert set(expected["exp_annotations"]) >= {"summary", "description"}
    assert set(alerts) - set(firing) == set(), "alerts never shown firing"
    assert set(alerts) - set(quiet) == set(), "alerts never shown quiet"


def test_every_recording_rule_has_a_unit_test():
    tested: set[str] = set()
    for path in rule_test_files():
        for group in load_yaml(path)["tests"]:
            tested |= {case["expr"] for case in group.get("promql_expr_test", [])}
    assert recording_rule_names() <= tested


def test_thresholds_are_documented_in_the_file_and_the_docs():
    header = ALERTS_FILE.read_text().split("groups:")[0]
    docs = (ROOT / "docs" / "alerts.md").read_text()
    for name in alert_rules():
        assert name in header, f"{name} missing from the threshold table of alerts.yml"
        assert f"### {name}" in docs, f"{name} missing from docs/alerts.md"
    for name in recording_rule_names():
        assert name in docs, f"{name} missing from docs/alerts.md"


# Each mutation moves one threshold a little, or drops a filter; the unit tests must notice.
WARN_FOR = "\n        labels:\n          severity: warning"
CRIT_FOR = (
    "\n        labels:\n          severity: critical\n        annotations:\n          summary:"
)
AUTH = ' "ModelArts rejects'
CREDENTIALS = ' "The exporter cannot get credentials'
REFRESH = "\n            ) > 0\n          )\n          and on (job, instance, project_id)\n"
REFRESH_FAILING = REFRESH + "            (modelarts_up == 0)"
REFRESH_WORKING = REFRESH + "            (modelarts_up >= 0)"
CLOCK = WARN_FOR + '\n        annotations:\n          summary: "Clock'
MUTATIONS = [
    pytest.param("> 900\n", "> 898\n", id="stuck-threshold-down"),
    pytest.param("> 900\n", "> 902\n", id="stuck-threshold-up"),
    pytest.param("wait_seconds > 1800", "wait_seconds > 1802", id="queued-threshold-up"),
    pytest.param("wait_seconds > 1800", "wait_seconds > 1798", id="queued-threshold-down"),
    pytest.param("offset 30m", "offset 5m", id="not-moving-queued-since"),
    pytest.param("queue_rank[30m]", "queue_rank[25m]", id="not-moving-window"),
    pytest.param("for: 5m" + WARN_FOR, "for: 4m" + WARN_FOR, id="failed-for"),
    pytest.param("_FAILED|UNAVAILABLE|", "_FAILED|", id="failed-unavailable"),
    pytest.param('|UNAVAILABLE|ERROR"', '|UNAVAILABLE"', id="failed-error"),
    pytest.param("seconds < 86400)", "seconds < 86398)", id="failed-recent-down"),
    pytest.param("seconds < 86400)", "seconds < 86402)", id="failed-recent-up"),
    pytest.param("|SNAPSHOTTING|", "|", id="stuck-snapshotting"),
    pytest.param("remaining_seconds < 900", "remaining_seconds < 902", id="autostop-up"),
    pytest.param("remaining_seconds < 900", "remaining_seconds < 898", id="autostop-down"),
    pytest.param(
        'status{status="RUNNING"}\n          )', "status{}\n          )", id="autostop-running-only"
    ),
    pytest.param("seconds > 28800)", "seconds > 28798)", id="accelerator-down"),
    pytest.param("seconds > 28800)", "seconds > 28802)", id="accelerator-up"),
    pytest.param('{resource=~"gpu|npu"} > 0', '{resource=~"gpu"} > 0', id="accelerator-npu"),
    pytest.param("auto_stop_enabled == 1", "auto_stop_enabled == 2", id="accelerator-auto-stop"),
    pytest.param(
        'status{status="RUNNING"}\n            and on',
        "status{}\n            and on",
        id="accelerator-running-only",
    ),
    pytest.param("\n          > 3\n", "\n          > 2\n", id="failures-down"),
    pytest.param("\n          > 3\n", "\n          > 4\n", id="failures-up"),
    pytest.param('"CREATE_FAILED|START_FAILED"', '"CREATE_FAILED"', id="failures-start"),
    pytest.param("== 1\n        for: 10m", "== 1\n        for: 11m", id="sold-out-for"),
    pytest.param('{flavor!~".*free.*"}', "", id="sold-out-free-flavors"),
    pytest.param("> 3600\n", "> 3598\n", id="queue-wait-down"),
    pytest.param("> 3600\n", "> 3602\n", id="queue-wait-up"),
    pytest.param("histogram_quantile(0.9,", "histogram_quantile(0.5,", id="queue-wait-p90"),
    pytest.param('"", "")\n        for: 5m', '"", "")\n        for: 6m', id="down-for"),
    pytest.param("up == 0\n            and on", "up == 0\n            or on", id="down-target"),
    pytest.param("seconds > 300", "seconds > 298", id="stale-down"),
    pytest.param("seconds > 300", "seconds > 302", id="stale-up"),
    pytest.param("> 300\n        for: 2m", "> 300\n        for: 3m", id="stale-for-up"),
    pytest.param("> 300\n        for: 2m", "> 300\n        for: 1m", id="stale-for-down"),
    pytest.param("> 0.1\n", "> 0.08\n", id="api-errors-down"),
    pytest.param("> 0.1\n", "> 0.12\n", id="api-errors-up"),
    pytest.param('401|403"}[20m]', '401|403"}[25m]', id="auth-window-up"),
    pytest.param('401|403"}[20m]', '401|403"}[15m]', id="auth-window-down"),
    pytest.param("for: 5m" + CRIT_FOR + AUTH, "for: 6m" + CRIT_FOR + AUTH, id="auth-for"),
    pytest.param(
        '403"}[20m])' + REFRESH_FAILING, '403"}[20m])' + REFRESH_WORKING, id="auth-refresh-failing"
    ),
    pytest.param('2.."}[20m]', '2.."}[25m]', id="credentials-window-up"),
    pytest.param('2.."}[20m]', '2.."}[15m]', id="credentials-window-down"),
    pytest.param(
        "for: 5m" + CRIT_FOR + CREDENTIALS, "for: 6m" + CRIT_FOR + CREDENTIALS, id="credentials-for"
    ),
    pytest.param(
        '2.."}[20m])' + REFRESH_FAILING,
        '2.."}[20m])' + REFRESH_WORKING,
        id="credentials-refresh-failing",
    ),
    pytest.param("skew_seconds) > 300", "skew_seconds) > 298", id="clock-skew-down"),
    pytest.param("skew_seconds) > 300", "skew_seconds) > 302", id="clock-skew-up"),
    pytest.param("abs(modelarts", "(modelarts", id="clock-skew-abs"),
    pytest.param("for: 10m" + CLOCK, "for: 11m" + CLOCK, id="clock-skew-for"),
]


@pytest.mark.parametrize(("old", "new"), MUTATIONS)
def test_unit_tests_catch_a_moved_threshold(tmp_path: Path, old: str, new: str):
    promtool = require_tool("promtool")
    header, sep, body = ALERTS_FILE.read_text().partition("\ngroups:")
    assert body.count(old) == 1, f"mutation target {old!r} must occur once in the rules"
    shutil.copytree(ALERTS_FILE.parent, tmp_path / "prometheus")
    (tmp_path / "prometheus" / "alerts.yml").write_text(header + sep + body.replace(old, new))
    tests = sorted((tmp_path / "prometheus" / "tests").glob("*.yml"))
    result = run(promtool, "test", "rules", *tests, cwd=tmp_path)
    assert result.returncode != 0, f"no unit test noticed {old!r} -> {new!r}"


def test_recording_file_is_valid_for_the_chart_and_standalone():
    doc = load_yaml(RECORDING_FILE)
    groups = [g["name"] for path in RULE_FILES for g in load_yaml(path)["groups"]]
    assert len(groups) == len(set(groups)), "group names must be unique across files"
    assert all("record" in rule for group in doc["groups"] for rule in group["rules"])


def test_docs_show_each_rule_as_it_is():
    docs = (ROOT / "docs" / "alerts.md").read_text()
    for path in RULE_FILES:
        for rule in rules(path):
            block = "```promql\n" + rule["expr"].rstrip("\n") + "\n```"
            assert block in docs, (
                f"docs/alerts.md shows a stale {rule.get('alert') or rule['record']}"
            )
