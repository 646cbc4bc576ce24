"""The Prometheus rules: valid, unit-tested alert by alert, and the tests bite."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

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
    "NotebookStuckInTransition": "warning",
    "NotebookQueuedTooLong": "warning",
    "NotebookQueueNotMoving": "warning",
    "NotebookFailed": "warning",
    "NotebookAutoStopSoon": "info",
    "FlavorSoldOut": "warning",
    "ModelArtsExporterDown": "critical",
    "ModelArtsDataStale": "warning",
    "ModelArtsAPIErrors": "warning",
    "ModelArtsAuthFailing": "critical",
}
# Alerts about one notebook: their descriptions name it, its user and its project.
NOTEBOOK_ALERTS = {
    "NotebookStuckInTransition",
    "NotebookQueuedTooLong",
    "NotebookQueueNotMoving",
    "NotebookFailed",
    "NotebookAutoStopSoon",
}


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
    allowed = {m.name for m in METRICS} | {"up"}
    for name, rule in alert_rules().items():
        used = metric_names(rule["expr"])
        assert used, name
        assert used <= allowed, f"{name} uses {used - allowed}"
    assert not recording_rule_names() & set(ALERTS_FILE.read_text().split())


def test_exporter_down_selects_the_job_once_and_the_stuck_alert_uses_update_time():
    alerts = alert_rules()
    down = alerts["ModelArtsExporterDown"]["expr"]
    assert down.count('job=~".*modelarts.*"') == 1 and "modelarts_up == 0" in down
    stuck = alerts["NotebookStuckInTransition"]
    assert "modelarts_notebook_instance_updated_timestamp_seconds" in stuck["expr"]
    assert "for" not in stuck, "the update time survives restarts; a `for` would not"
    for status in ("CREATING", "STARTING", "RESTARTING", "STOPPING", "RESIZING"):
        assert status in stuck["expr"]
    assert re.search(r"code!~\"2\.\.\"", alerts["ModelArtsAPIErrors"]["expr"])
    assert '{code=~"401|403"}' in alerts["ModelArtsAuthFailing"]["expr"]


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
CRIT_FOR = "\n        labels:\n          severity: critical"
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
    pytest.param("|SNAPSHOTTING|", "|", id="stuck-snapshotting"),
    pytest.param("remaining_seconds < 900", "remaining_seconds < 902", id="autostop-up"),
    pytest.param("remaining_seconds < 900", "remaining_seconds < 898", id="autostop-down"),
    pytest.param('{status="RUNNING"}', "{}", id="autostop-running-only"),
    pytest.param("== 1\n        for: 10m", "== 1\n        for: 11m", id="sold-out-for"),
    pytest.param("for: 5m" + CRIT_FOR, "for: 6m" + CRIT_FOR, id="down-for"),
    pytest.param('job=~".*modelarts.*"', 'job=~".*"', id="down-job-matcher"),
    pytest.param("seconds > 300", "seconds > 298", id="stale-down"),
    pytest.param("seconds > 300", "seconds > 302", id="stale-up"),
    pytest.param("> 0.1\n", "> 0.08\n", id="api-errors-down"),
    pytest.param("> 0.1\n", "> 0.12\n", id="api-errors-up"),
    pytest.param('401|403"}[20m]', '401|403"}[25m]', id="auth-window-up"),
    pytest.param('401|403"}[20m]', '401|403"}[15m]', id="auth-window-down"),
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
