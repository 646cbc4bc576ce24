"""Finding the real tools the tests need (promtool, prometheus, helm's engine, hadolint)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def require_tool(name: str) -> str:
    """The path of a tool a test needs, on PATH or beside this Python (a venv's scripts).
    A missing tool fails the test, never skips it: `scripts/check` installs them all."""
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.fail(
            f"{name} is not installed: scripts/check installs it (promtool: Debian prometheus)"
        )
    return path


def fixture_bytes(name: str) -> bytes:
    """One of the vendor's published example responses, verbatim."""
    return (FIXTURES / name).read_bytes()
