"""The set of targets: `peek` answers from what is there and never calls the API (what
is rendered ahead of a scrape reads it); `statuses` refreshes."""

from __future__ import annotations

import threading
from pathlib import Path

import yaml

from exporter.cli import reloaded_targets
from exporter.config.command_line import load_settings
from exporter.pipeline.targets import TargetSet


def target_set(tmp_path: Path, names: list[str]) -> TargetSet:
    """Targets whose API is a closed port on loopback: any call would fail at once."""
    path = tmp_path / "targets.yml"
    targets = [
        {
            "name": n,
            "endpoint": "http://127.0.0.1:9",
            "project_id": f"{i + 1:032x}",
            "auth": {"mode": "aksk", "ak": {"env": "TEST_AK"}, "sk": {"env": "TEST_SK"}},
        }
        for i, n in enumerate(names)
    ]
    path.write_text(yaml.safe_dump({"targets": targets}))
    running = TargetSet({})
    running.replace(reloaded_targets(load_settings({"config_file": str(path)}), running))
    return running


def test_peek_never_refreshes_and_names_choose_the_targets(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_AK", "AKAKAKAKAKAKAKAKAKAK")
    monkeypatch.setenv("TEST_SK", "secret-key-for-a-test-only-000000000000")
    targets = target_set(tmp_path, ["a", "b"])
    before = threading.active_count()
    peeked = targets.peek()
    assert [s.project_id for s in peeked] == [f"{1:032x}", f"{2:032x}"]
    assert all(s.snapshot is None and not s.up for s in peeked)
    assert all(not t.telemetry().requests for t in (targets._targets[n].client for n in "ab"))
    assert threading.active_count() == before  # no refresh started
    assert [s.project_id for s in targets.peek(["b", "unknown"])] == [f"{2:032x}"]
    targets.close()
