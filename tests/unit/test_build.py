"""What `--version` prints and `modelarts_exporter_build_info` carries: the image's build
arguments, else git of the checkout, else "unknown"."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import pytest

from exporter import __version__, build
from exporter.build import ENV_BRANCH, ENV_DATE, ENV_REVISION, build_info
from tests.support.processes import run_exporter

ROOT = Path(__file__).resolve().parents[2]
IMAGE_ENV = {
    ENV_REVISION: "0123456789abcdef0123456789abcdef01234567",
    ENV_BRANCH: "v1.2.3",
    ENV_DATE: "2026-01-02T03:04:05Z",
}


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch):
    for name in (ENV_REVISION, ENV_BRANCH, ENV_DATE):
        monkeypatch.delenv(name, raising=False)
    build_info.cache_clear()
    yield
    build_info.cache_clear()


def version_output(env: dict[str, str], cwd: Path = ROOT) -> str:
    result = run_exporter("--version", env=env, cwd=cwd, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_image_build_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in IMAGE_ENV.items():
        monkeypatch.setenv(name, value)
    info = build_info()
    assert (info.version, info.revision, info.branch, info.build_date) == (
        __version__,
        IMAGE_ENV[ENV_REVISION],
        "v1.2.3",
        "2026-01-02T03:04:05Z",
    )
    assert info.python_version == platform.python_version()


def test_the_version_text_is_the_layout_of_go_exporters() -> None:
    out = version_output(IMAGE_ENV)
    lines = out.splitlines()
    assert lines[0] == (
        f"modelarts-exporter, version {__version__} "
        f"(branch: v1.2.3, revision: {IMAGE_ENV[ENV_REVISION]})"
    )
    assert lines[1].split() == ["build", "date:", "2026-01-02T03:04:05Z"]
    assert lines[2].split()[:2] == ["python", "version:"]
    assert lines[3].split()[0] == "platform:"


def test_a_checkout_answers_from_git() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")  # e.g. an sdist: the next test covers it
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    info = build_info()
    assert info.revision == head
    assert info.branch not in ("", "unknown")
    assert info.build_date == "unknown"  # a checkout was never built


def test_unknown_without_image_arguments_or_git(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(build, "_CHECKOUT", tmp_path)  # no .git there
    info = build_info()
    assert (info.revision, info.branch, info.build_date) == ("unknown", "unknown", "unknown")


def test_the_dockerfile_default_unknown_falls_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(build, "_CHECKOUT", tmp_path)
    monkeypatch.setenv(ENV_REVISION, "unknown")
    assert build_info().revision == "unknown"


def test_build_info_metric_carries_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    from exporter.exposition.metrics import METRICS

    for name, value in IMAGE_ENV.items():
        monkeypatch.setenv(name, value)
    (metric,) = [m for m in METRICS if m.name == "modelarts_exporter_build_info"]
    assert metric.label_names == ("version", "revision", "branch", "pythonversion")
    samples = list(metric.value(None, 0.0))  # type: ignore[arg-type]
    assert samples == [
        ((__version__, IMAGE_ENV[ENV_REVISION], "v1.2.3", platform.python_version()), 1.0)
    ]
