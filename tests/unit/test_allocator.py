"""The allocator settings reach glibc, and the environment's own win."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from exporter import allocator

PROBE = "import json; from exporter import allocator; print(json.dumps(allocator.tune()))"


def tuned(env: dict[str, str]) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_both_settings_are_applied_in_a_fresh_process(monkeypatch):
    assert tuned({"PATH": "/usr/bin"}) == {"MALLOC_ARENA_MAX": 2, "MALLOC_MMAP_THRESHOLD_": 262144}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_value_set_in_the_environment_is_left_alone():
    assert tuned({"PATH": "/usr/bin", "MALLOC_ARENA_MAX": "4"}) == {
        "MALLOC_MMAP_THRESHOLD_": 262144
    }


def test_nothing_is_done_off_linux(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert allocator.tune() == {}
