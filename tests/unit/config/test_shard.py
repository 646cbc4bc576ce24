"""`--config.shard=I/N`: which replica takes which target of the targets file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from exporter.cli import reloaded_targets
from exporter.config.command_line import load_settings
from exporter.config.settings import SettingsError
from exporter.config.shard import Shard, parse_shard, shard_of
from exporter.pipeline.targets import TargetSet

PROJECTS = [f"{i:032x}" for i in range(1, 7)]
NAMES = ["training-beijing", "research-shanghai", "research-iam", "a", "b", "t1"]
RUN = [sys.executable, "-m", "exporter"]


def targets_file(tmp_path: Path, names: list[str]) -> str:
    path = tmp_path / "targets.yml"
    targets = [
        {"name": n, "region": "cn-north-4", "project_id": f"{i + 1:032x}", "auth": {"mode": "ecs"}}
        for i, n in enumerate(names)
    ]
    path.write_text(yaml.safe_dump({"targets": targets}))
    return str(path)


# -- the assignment ------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5])
def test_every_target_goes_to_exactly_one_shard(count):
    names = [f"project-{i}" for i in range(500)] + NAMES
    targets = {name: name for name in names}
    shares = [Shard(i, count).select(targets) for i in range(count)]
    assert sorted(n for share in shares for n in share) == sorted(names)  # all, none twice
    if count > 1:
        assert all(share for share in shares)  # 506 names: no shard is left out


# Computed once from zlib.crc32: a change here moves targets between running replicas.
PINNED = {
    "training-beijing": [0, 0, 1, 2, 4],
    "research-shanghai": [0, 0, 1, 2, 0],
    "research-iam": [0, 0, 0, 2, 0],
    "a": [0, 1, 0, 3, 2],
    "t1": [0, 1, 2, 3, 4],
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_the_assignment_is_pinned(name):
    assert [shard_of(name, n) for n in range(1, 6)] == PINNED[name]


def test_the_assignment_does_not_depend_on_the_process():
    """Not Python's salted hash(): another process with another hash seed agrees."""
    code = "from exporter.config.shard import shard_of; print(shard_of('training-beijing', 5))"
    for seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.stdout.strip() == "4"


def test_the_shard_keeps_the_file_order():
    targets = {n: i for i, n in enumerate(NAMES)}
    assert list(Shard(0, 2).select(targets)) == [n for n in NAMES if shard_of(n, 2) == 0]


# -- the setting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shard"),
    [("", None), ("0/1", Shard(0, 1)), ("2/3", Shard(2, 3)), (" 1/2 ", Shard(1, 2))],
)
def test_good_values(tmp_path, value, shard):
    settings = load_settings({"config_file": targets_file(tmp_path, NAMES), "config_shard": value})
    assert settings.shard == shard == parse_shard(value)


@pytest.mark.parametrize("value", ["3/2", "2/2", "a/b", "-1/2", "0/0", "1", "1/", "/2", "1/2/3"])
def test_bad_values_name_the_setting(tmp_path, value):
    with pytest.raises(SettingsError) as caught:
        load_settings({"config_file": targets_file(tmp_path, NAMES), "config_shard": value})
    assert str(caught.value).startswith(
        "invalid setting --config.shard / MODELARTS_EXPORTER_CONFIG_SHARD: "
    )


def test_a_shard_needs_a_targets_file():
    with pytest.raises(SettingsError) as caught:
        load_settings({"demo": True, "config_shard": "0/2"})
    assert "--config.shard / MODELARTS_EXPORTER_CONFIG_SHARD: needs --config.file" in str(
        caught.value
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--config.shard=3/2"], {}),
        (["--config.shard=-1/2"], {}),
        ([], {"MODELARTS_EXPORTER_CONFIG_SHARD": "a/b"}),
        ([], {"MODELARTS_EXPORTER_CONFIG_SHARD": "0/0"}),
        (["--config.shard=0/2", "--demo"], {"MODELARTS_EXPORTER_CONFIG_FILE": ""}),
    ],
    ids=["3/2", "-1/2", "env a/b", "env 0/0", "no targets file"],
)
def test_the_process_exits_2_with_one_line(tmp_path, args, env):
    if "--demo" not in args:
        args = [*args, "--config.file", targets_file(tmp_path, NAMES)]
    result = subprocess.run(
        [*RUN, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "--config.shard / MODELARTS_EXPORTER_CONFIG_SHARD" in lines[0]


# -- --config.check ------------------------------------------------------------------------


def test_config_check_says_what_the_shard_takes(tmp_path):
    path = targets_file(tmp_path, NAMES)
    taken = []
    for index in range(3):
        result = subprocess.run(
            [*RUN, "--config.check", "--config.file", path, f"--config.shard={index}/3"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        first, second = result.stdout.splitlines()
        assert first == f"{path}: OK, 6 target(s): {', '.join(NAMES)}"
        mine = [n for n in NAMES if shard_of(n, 3) == index]
        assert second == f"shard {index}/3 takes {len(mine)} target(s): {', '.join(mine)}"
        taken += mine
    assert sorted(taken) == sorted(NAMES)


def test_config_check_of_a_shard_without_targets(tmp_path):
    path = targets_file(tmp_path, ["research-iam"])  # shard 0 of 2, 3, 5
    result = subprocess.run(
        [*RUN, "--config.check", "--config.file", path, "--config.shard=1/3"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert result.stdout.splitlines()[1] == "shard 1/3 takes no target"


# -- reloads and readiness -----------------------------------------------------------------


def test_a_reload_keeps_the_shard(tmp_path):
    path = targets_file(tmp_path, NAMES)
    settings = load_settings({"config_file": path, "config_shard": "1/2"})
    running = TargetSet({})
    first = reloaded_targets(settings, running)
    assert list(first) == [n for n in NAMES if shard_of(n, 2) == 1]
    more = [*NAMES, *(f"new-{i}" for i in range(10))]
    targets_file(tmp_path, more)
    second = reloaded_targets(settings, running)
    assert list(second) == [n for n in more if shard_of(n, 2) == 1]
    assert set(first) <= set(second)  # a target never moves on a reload
    assert all(second[n].project_id == first[n].project_id for n in first)


def test_a_shard_without_targets_is_ready():
    """Nothing to wait for: the other shards hold the targets."""
    empty = TargetSet({})
    assert empty.names() == [] and empty.statuses() == [] and empty.ready()
