"""The import contract of pyproject.toml (`lint-imports`): kept by the code, and broken
by an upward import, type-only ones included, so the check catches the next one."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.tools import ROOT, require_tool


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [require_tool("lint-imports"), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "exporter", tmp_path / "exporter")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_code_keeps_the_contract(copy: Path) -> None:
    result = lint_imports(copy)
    assert result.returncode == 0, result.stdout
    assert "BROKEN" not in result.stdout and "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "added"),
    [
        ("exporter/modelarts/instance.py", "from exporter.http import server\n"),
        (
            "exporter/exposition/snapshot.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from exporter.pipeline.cache import SnapshotCache\n",
        ),
        ("exporter/simulator/fleet.py", "from exporter.exposition import metrics\n"),
        ("exporter/pipeline/targets.py", "from exporter import simulator\n"),
    ],
)
def test_an_upward_import_breaks_it(copy: Path, module: str, added: str) -> None:
    path = copy / module
    path.write_text(path.read_text() + "\n" + added)
    result = lint_imports(copy)
    assert result.returncode == 1
    importer = module.removesuffix(".py").replace("/", ".")
    assert f"{importer} ->" in result.stdout or f"{importer} is not allowed" in result.stdout
