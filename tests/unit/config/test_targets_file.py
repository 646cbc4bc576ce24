"""The targets file: one settings per target, every problem with its path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from exporter.config.settings import Settings
from exporter.config.targets_file import ConfigError, load_config

BASE = "https://modelarts.cn-north-4.myhuaweicloud.com"
PROJECT_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
PROJECT_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


# -- the targets file ------------------------------------------------------------------


def write(tmp_path: Path, doc: object) -> str:
    path = tmp_path / "targets.yml"
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return str(path)


def defaults() -> Settings:
    return Settings.model_validate({"demo": True})


def test_a_good_file_gives_one_settings_per_target(tmp_path, monkeypatch):
    monkeypatch.setenv("A_SK", "secret-a")
    (tmp_path / "ak").write_text("AK-A\n")
    path = write(
        tmp_path,
        {
            "targets": [
                {
                    "name": "a",
                    "region": "cn-north-4",
                    "project_id": PROJECT_A,
                    "api": "both",
                    "auth": {"ak": {"file": str(tmp_path / "ak")}, "sk": {"env": "A_SK"}},
                    "cache_ttl": 60,
                },
                {
                    "name": "b",
                    "region": "cn-east-3",
                    "project_id": PROJECT_B,
                    "auth": {"mode": "ecs"},
                },
            ]
        },
    )
    targets = load_config(path, defaults())
    a, b = targets["a"], targets["b"]
    assert (a.api, a.cache_ttl, a.effective_auth_mode) == ("both", 60, "aksk")
    assert a.ak is not None and a.ak.get_secret_value() == "AK-A"
    assert a.sk is not None and a.sk.get_secret_value() == "secret-a"
    assert b.modelarts_endpoint == "https://modelarts.cn-east-3.myhuaweicloud.com"
    assert (b.effective_auth_mode, b.cache_ttl) == ("ecs", 30)


def test_every_problem_is_listed_with_its_path(tmp_path):
    path = write(
        tmp_path,
        {
            "targets": [
                {"name": "a", "project_id": PROJECT_A, "regoin": "cn-north-4"},
                {"name": "bad name!", "project_id": ["not", "a", "string"]},
                {"name": "c", "project_id": PROJECT_B, "cache_ttl": -1},
            ]
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, defaults())
    text = "\n".join(caught.value.problems)
    assert "targets[0].regoin: Extra inputs are not permitted" in text
    assert "targets[1].name" in text and "targets[1].project_id" in text
    assert "targets[2].cache_ttl" in text


def test_inline_secrets_are_refused_unless_allowed(tmp_path):
    target = {"name": "a", "region": "r", "project_id": PROJECT_A, "auth": {"ak": "AK", "sk": "SK"}}
    with pytest.raises(ConfigError, match=r"targets\[0\].auth.ak: inline secret refused"):
        load_config(write(tmp_path, {"targets": [target]}), defaults())
    allowed = load_config(
        write(tmp_path, {"allow_inline_secrets": True, "targets": [target]}), defaults()
    )
    assert allowed["a"].sk is not None and allowed["a"].sk.get_secret_value() == "SK"


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ("targets: [", "not valid YAML"),
        ({"targets": []}, "targets: List should have at least 1 item"),
        (
            {
                "targets": [
                    {"name": "a", "project_id": PROJECT_A, "region": "r"},
                    {"name": "a", "project_id": PROJECT_B, "region": "r"},
                ]
            },
            "unique: a",
        ),
        (
            {
                "targets": [
                    {
                        "name": "a",
                        "project_id": PROJECT_A,
                        "region": "r",
                        "auth": {"sk": {"env": "NOT_SET_ANYWHERE"}},
                    }
                ]
            },
            "NOT_SET_ANYWHERE is not set",
        ),
        (
            {"targets": [{"name": "a", "project_id": PROJECT_A, "auth": {"mode": "ecs"}}]},
            "targets[0].region",
        ),
    ],
)
def test_bad_files(tmp_path, doc, problem):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, doc), defaults())
    assert problem in str(caught.value)


def test_config_check_exits_0_or_2_listing_problems(tmp_path):
    good = write(
        tmp_path,
        {
            "targets": [
                {"name": "a", "region": "r", "project_id": PROJECT_A, "auth": {"mode": "ecs"}}
            ]
        },
    )
    run = [sys.executable, "-m", "exporter", "--config.check", "--config.file"]
    ok = subprocess.run([*run, good], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "OK, 1 target(s): a" in ok.stdout
    bad = write(tmp_path, {"targets": [{"name": "a", "project_id": PROJECT_A, "x": 1, "y": 2}]})
    result = subprocess.run([*run, bad], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "targets[0].x" in result.stderr and "targets[0].y" in result.stderr
