"""The examples a newcomer copies: the targets file of docs/targets.md, checked by the real
CLI, and the IAM custom policy of docs/credentials.md, exactly the exporter's actions."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from exporter.modelarts.client import LIST_ALL_PERMISSION, LIST_PERMISSION
from tests.support.processes import run_exporter

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TARGETS = EXAMPLES / "targets.yml"
POLICY = EXAMPLES / "iam-policy.json"


def env_references(node: Any) -> list[str]:
    """Every `{env: NAME}` secret reference of a targets file."""
    if isinstance(node, dict):
        found = [node["env"]] if set(node) == {"env"} else []
        return found + [name for value in node.values() for name in env_references(value)]
    if isinstance(node, list):
        return [name for item in node for name in env_references(item)]
    return []


def config_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_exporter("--config.check", "--config.file", str(TARGETS), env=env, cwd=ROOT)


def test_the_targets_example_passes_the_config_check() -> None:
    names = env_references(yaml.safe_load(TARGETS.read_text()))
    assert names, "the example shows secrets by reference"
    result = config_check({name: f"dummy-{name.lower()}" for name in names})
    assert result.returncode == 0, result.stdout + result.stderr
    targets = [t["name"] for t in yaml.safe_load(TARGETS.read_text())["targets"]]
    assert result.stdout.strip() == (
        f"{TARGETS}: OK, {len(targets)} target(s): {', '.join(targets)}"
    )


def test_the_check_resolves_the_references_of_the_example() -> None:
    result = config_check({})
    assert result.returncode == 2
    assert "environment variable TRAINING_AK is not set" in result.stderr


def test_docs_show_the_targets_example_itself() -> None:
    text = (ROOT / "docs" / "targets.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    assert TARGETS.read_text() in blocks


def test_the_iam_policy_grants_exactly_the_exporters_actions() -> None:
    policy = json.loads(POLICY.read_text())
    assert policy["Version"] == "1.1"  # IAM's custom-policy format
    (statement,) = policy["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Action": ["modelarts:notebook:list", "modelarts:notebook:listAllNotebooks"],
    }
    # The permissions the client names when it is refused (403).
    assert set(statement["Action"]) == {LIST_PERMISSION, LIST_ALL_PERMISSION}


def test_the_credentials_docs_show_the_policy_file() -> None:
    text = (ROOT / "docs" / "credentials.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    assert [json.loads(b) for b in blocks] == [json.loads(POLICY.read_text())]
    readme = (ROOT / "README.md").read_text()
    assert "examples/iam-policy.json" in readme
