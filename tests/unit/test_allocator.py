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
    allocator._glibc.cache_clear()
    try:
        assert allocator.tune() == {} and allocator.trim() is False
    finally:
        allocator._glibc.cache_clear()


TRIM_PROBE = """
import json
from exporter import allocator
allocator.tune()
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
blocks = [bytes(100_000) for _ in range(1500)]  # 150 MB of heap blocks, under the mmap threshold
pin = bytes(100_000)  # above them: the heap cannot shrink from its top by itself
del blocks
before = rss()
trimmed = allocator.trim()
print(json.dumps([trimmed, before, rss()]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_trim_hands_back_what_was_freed_inside_the_heap():
    out = subprocess.run(
        [sys.executable, "-c", TRIM_PROBE],
        env={"PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    trimmed, before, after = json.loads(out.stdout)
    assert trimmed is True
    assert before - after >= 75  # MiB of the 143 freed, resident until then
