"""The distributions the release workflow publishes to PyPI: `python -m build` makes the
sdist and the wheel, with the SPDX license, its files and the project's metadata."""

from __future__ import annotations

import email
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from exporter import __version__

ROOT = Path(__file__).resolve().parents[2]
HOME = "https://github.com/modelarts-exporter/modelarts-exporter"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def wheel_metadata(dist: Path) -> email.message.Message:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(archive.read(name))


def test_build_makes_an_sdist_and_a_wheel(dist: Path) -> None:
    names = sorted(p.name for p in dist.iterdir())
    assert names == [
        f"modelarts_exporter-{__version__}-py3-none-any.whl",
        f"modelarts_exporter-{__version__}.tar.gz",
    ]


def test_the_license_is_an_spdx_expression_with_its_files(dist: Path) -> None:
    meta = wheel_metadata(dist)
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE", "NOTICE"]
    assert not [c for c in meta.get_all("Classifier") if c.startswith("License ::")]
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        licenses = {n.rsplit("/", 1)[1] for n in archive.namelist() if "/licenses/" in n}
    assert licenses == {"LICENSE", "NOTICE"}


def test_the_metadata_points_at_the_project(dist: Path) -> None:
    meta = wheel_metadata(dist)
    urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL"))
    assert urls["Source"] == HOME and urls["Homepage"] == HOME
    assert urls["Issues"] == f"{HOME}/issues"
    assert {"prometheus", "modelarts", "huawei-cloud"} <= set(meta["Keywords"].split(","))
    classifiers = meta.get_all("Classifier")
    assert "Topic :: System :: Monitoring" in classifiers
    assert meta["Requires-Python"] == ">=3.10"
    assert "Programming Language :: Python :: 3.10" in classifiers
    assert meta["Description-Content-Type"] == "text/markdown"


def test_the_sdist_carries_the_license_files_and_no_tests(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {"LICENSE", "NOTICE", "pyproject.toml", "README.md", "exporter/cli.py"} <= names
    assert "exporter/http/healthcheck.py" in names
    assert not [n for n in names if n.startswith(("tests/", ".github/", "helm/"))]
