"""The chart in someone else's cluster: `helm test`, the NetworkPolicy, the
PodDisruptionBudget, Chart.yaml's metadata, the chart's README and chart-testing's values.

Rendered by the real Helm engine; see chart.py. The `helm test` pod's script is run
against a real exporter process. A missing tool fails these tests."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from tests.deploy.chart import (
    CHART,
    CORE_KINDS,
    FULLNAME,
    KUBE_VERSIONS,
    NAMESPACE,
    RELEASE,
    ROOT,
    chart_values,
    chart_yaml,
    is_test_hook,
    kinds,
    notes,
    one,
    render,
    render_error,
    run_script,
)

TEST_POD = f"{FULLNAME}-test-ready"
# Where kube-prometheus-stack's Prometheus runs, as NetworkPolicy selectors.
KUBE_PROMETHEUS_STACK = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}


def hook_pod(values: dict[str, Any] | None = None) -> dict[str, Any]:
    pods = [o for o in render(values) if o["kind"] == "Pod"]
    assert len(pods) == 1
    return pods[0]


# -- helm test ---------------------------------------------------------------------------


def test_the_test_pod_is_a_helm_test_hook_with_the_charts_image() -> None:
    pod = hook_pod({"image": {"tag": "0.9.0"}, "imagePullSecrets": [{"name": "regcred"}]})
    meta = pod["metadata"]
    assert meta["name"] == TEST_POD
    assert meta["annotations"]["helm.sh/hook"] == "test"
    assert "hook-succeeded" in meta["annotations"]["helm.sh/hook-delete-policy"]
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    (c,) = spec["containers"]
    assert c["image"] == chart_values()["image"]["repository"] + ":0.9.0"
    assert c["command"] == ["python", "-c"]
    assert f"{FULLNAME}.{NAMESPACE}.svc" in c["args"][0] and "/-/ready" in c["args"][0]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["resources"] == chart_values()["test"]["resources"]
    digest = "sha256:" + "cd" * 32
    assert hook_pod({"image": {"digest": digest}})["spec"]["containers"][0]["image"].endswith(
        "@" + digest
    )


def test_no_selector_of_the_release_picks_up_the_test_pod() -> None:
    objects = render(
        {"replicaCount": 2, "networkPolicy": {"enabled": True, "from": KUBE_PROMETHEUS_STACK}}
    )
    labels = one(objects, "Pod")["metadata"]["labels"]
    selectors = [
        one(objects, "Service")["spec"]["selector"],
        one(objects, "Deployment")["spec"]["selector"]["matchLabels"],
        one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one(objects, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
    ]
    for selector in selectors:
        assert not selector.items() <= labels.items(), selector


def test_the_test_pod_can_be_left_out() -> None:
    objects = render(
        {
            "test": {"enabled": False},
            "networkPolicy": {"enabled": True, "from": KUBE_PROMETHEUS_STACK},
        }
    )
    assert "Pod" not in kinds(objects)
    peers = one(objects, "NetworkPolicy")["spec"]["ingress"][0]["from"]
    assert all("-test" not in str(peer) for peer in peers)


def _script(values: dict[str, Any]) -> str:
    """The test pod's script, aimed at loopback instead of the Service's DNS name."""
    script = str(hook_pod(values)["spec"]["containers"][0]["args"][0])
    service = f'"{FULLNAME}.{NAMESPACE}.svc"'
    assert service in script
    return script.replace(service, '"127.0.0.1"')


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


def _web_config(directory: Path, mutual: bool) -> Path:
    from tests.support.certs import issue, make_ca

    server = issue(None, directory, "tls")  # self-signed, as many first installs are
    text = f"tls_server_config:\n  cert_file: {server.cert}\n  key_file: {server.key}\n"
    if mutual:
        ca = make_ca(directory)
        text += f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {ca.cert}\n"
    path = directory / "web-config.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("web", ["plain", "tls", "mutual-tls"])
def test_the_test_pods_script_passes_against_a_ready_exporter(tmp_path: Path, web: str) -> None:
    from tests.support.processes import exporter_process, free_port

    args = ["--demo"]
    port = free_port()
    values: dict[str, Any] = {"service": {"port": port}, "test": {"timeoutSeconds": 30}}
    if web != "plain":
        args += ["--web.config.file", str(_web_config(tmp_path, mutual=web == "mutual-tls"))]
        values["webConfig"] = {
            "existingSecret": "web",
            "tls": True,
            "requireClientCert": web == "mutual-tls",
        }
    script = _script(values)
    with exporter_process(*args, ready=False) as exporter:
        # exporter_process picks its own port: aim the script at it.
        script = script.replace(f", {port}, ", f", {exporter.url.rpartition(':')[2]}, ")
        result = _run(script)
    assert result.returncode == 0, result.stdout + result.stderr
    if web == "mutual-tls":
        assert "client certificates required" in result.stdout
    else:
        scheme = "https" if web == "tls" else "http"
        assert re.fullmatch(rf"{scheme}://127\.0\.0\.1:\d+/-/ready: 200\n", result.stdout)


def test_the_test_pods_script_fails_when_nothing_gets_ready() -> None:
    from tests.support.processes import free_port

    script = _script({"service": {"port": free_port()}, "test": {"timeoutSeconds": 1}})
    started = time.monotonic()
    result = _run(script)
    assert result.returncode == 1
    assert "/-/ready: not ready" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 30


# -- NetworkPolicy -----------------------------------------------------------------------


def network_policy(values: dict[str, Any]) -> dict[str, Any]:
    return one(render({"networkPolicy": {"enabled": True, **values}}), "NetworkPolicy")


def test_no_network_policy_by_default() -> None:
    assert "NetworkPolicy" not in kinds(render())


def test_network_policy_admits_prometheus_and_the_test_pod_only() -> None:
    policy = network_policy({"from": KUBE_PROMETHEUS_STACK})
    spec = policy["spec"]
    assert (
        spec["podSelector"]["matchLabels"]
        == (one(render(), "Deployment")["spec"]["selector"]["matchLabels"])
    )
    assert spec["policyTypes"] == ["Ingress"]  # egress to ModelArts and IAM is left alone
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    prometheus, test = rule["from"]
    # One peer with both selectors: Prometheus pods in the Prometheus namespace (AND).
    assert prometheus == KUBE_PROMETHEUS_STACK
    assert test == {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": "modelarts-exporter-test",
                "app.kubernetes.io/instance": RELEASE,
            }
        }
    }
    assert test["podSelector"]["matchLabels"].items() <= (
        one(render(), "Pod")["metadata"]["labels"].items()
    )


@pytest.mark.parametrize("selector", ["namespaceSelector", "podSelector"])
def test_network_policy_by_namespace_or_by_pods(selector: str) -> None:
    given = {selector: KUBE_PROMETHEUS_STACK[selector]}
    peers = network_policy({"from": given})["spec"]["ingress"][0]["from"]
    # podSelector alone: those pods of the release's namespace; namespaceSelector alone:
    # every pod of those namespaces.
    assert peers[0] == given


def test_network_policy_selector_expressions_and_extra_peers() -> None:
    expressions = {
        "matchExpressions": [{"key": "app", "operator": "In", "values": ["prometheus", "vmagent"]}]
    }
    spec = network_policy(
        {
            "from": {"podSelector": expressions},
            "extraFrom": [{"ipBlock": {"cidr": "10.0.0.5/32"}}],
        }
    )["spec"]
    peers = spec["ingress"][0]["from"]
    assert peers[0] == {"podSelector": expressions}
    assert peers[1] == {"ipBlock": {"cidr": "10.0.0.5/32"}}


def test_only_extra_peers_are_enough() -> None:
    peers = network_policy({"extraFrom": [{"ipBlock": {"cidr": "192.0.2.0/24"}}]})["spec"][
        "ingress"
    ][0]["from"]
    assert peers[0] == {"ipBlock": {"cidr": "192.0.2.0/24"}}


def test_a_network_policy_without_prometheus_fails_the_render() -> None:
    error = render_error({"networkPolicy": {"enabled": True}})
    assert "networkPolicy.from.namespaceSelector or podSelector" in error


# -- PodDisruptionBudget -----------------------------------------------------------------


def test_no_disruption_budget_over_a_single_pod() -> None:
    assert chart_values()["podDisruptionBudget"]["enabled"] is True
    assert "PodDisruptionBudget" not in kinds(render())
    assert "PodDisruptionBudget" not in kinds(render({"replicaCount": 1}))


def test_disruption_budget_with_several_replicas() -> None:
    objects = render({"replicaCount": 3})
    budget = one(objects, "PodDisruptionBudget")
    assert budget["apiVersion"] == "policy/v1"
    assert budget["spec"] == {
        "minAvailable": 1,
        "selector": {"matchLabels": one(objects, "Deployment")["spec"]["selector"]["matchLabels"]},
    }
    assert one(objects, "Deployment")["spec"]["replicas"] == 3


@pytest.mark.parametrize(
    ("budget", "spec"),
    [
        ({"minAvailable": "50%"}, {"minAvailable": "50%"}),
        ({"maxUnavailable": 1}, {"maxUnavailable": 1}),
        ({"maxUnavailable": "25%"}, {"maxUnavailable": "25%"}),
    ],
)
def test_disruption_budget_values(budget: dict[str, Any], spec: dict[str, Any]) -> None:
    rendered = one(
        render({"replicaCount": 2, "podDisruptionBudget": budget}), "PodDisruptionBudget"
    )
    assert {k: v for k, v in rendered["spec"].items() if k != "selector"} == spec


def test_disruption_budget_can_be_switched_off() -> None:
    objects = render({"replicaCount": 2, "podDisruptionBudget": {"enabled": False}})
    assert "PodDisruptionBudget" not in kinds(objects)


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"podDisruptionBudget": {"minAvailable": "half"}}, "minAvailable"),
        ({"podDisruptionBudget": {"maxUnavaliable": 1}}, "maxUnavaliable"),
        ({"networkPolicy": {"from": {"namespaceSelector": {"matchLabel": {}}}}}, "matchLabel"),
        ({"networkPolicy": {"form": {}}}, "form"),
        ({"networkPolicy": {"extraFrom": {"ipBlock": {}}}}, "extraFrom"),
        ({"test": {"timeoutSeconds": 0}}, "timeoutSeconds"),
        ({"test": {"enable": False}}, "enable"),
    ],
)
def test_schema_rejects_bad_operations_values(values: dict[str, Any], where: str) -> None:
    error = render_error(values)
    assert where in error, error


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_operations_objects_pass_strict_kubernetes_validation(kube_version: str) -> None:
    values = {
        "replicaCount": 2,
        "networkPolicy": {
            "enabled": True,
            "from": KUBE_PROMETHEUS_STACK,
            "extraFrom": [{"ipBlock": {"cidr": "10.0.0.0/8"}}],
        },
        "webConfig": {"existingSecret": "web", "tls": True},
        "imagePullSecrets": [{"name": "regcred"}],
    }
    objects = render(values)
    assert {"Pod", "NetworkPolicy", "PodDisruptionBudget"} <= set(kinds(objects))
    for obj in objects:
        assert obj["kind"] in CORE_KINDS
        kubernetes_validate.validate(obj, kube_version, strict=True)


# -- Chart.yaml --------------------------------------------------------------------------


def github_repository() -> str:
    home = chart_yaml()["home"]
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)", home)
    assert match, home
    return match[1]


def test_chart_metadata_points_at_the_project() -> None:
    meta = chart_yaml()
    repository = github_repository()
    assert meta["sources"] == [meta["home"]]
    assert meta["maintainers"] and all(m["name"] for m in meta["maintainers"])
    icon = re.fullmatch(
        rf"https://raw\.githubusercontent\.com/{re.escape(repository)}/main/(.+)", meta["icon"]
    )
    assert icon and (ROOT / icon[1]).is_file(), meta["icon"]
    svg = ElementTree.parse(ROOT / icon[1]).getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg" and svg.get("viewBox")
    assert meta["annotations"]["artifacthub.io/license"] == "Apache-2.0"


def test_the_default_image_is_the_one_the_release_publishes() -> None:
    owner = github_repository().split("/")[0]
    repository = chart_values()["image"]["repository"]
    assert repository == f"ghcr.io/{owner}/modelarts-exporter"
    # The Dockerfile's source label, the runbooks and Artifact Hub's image say the same.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ARG SOURCE={chart_yaml()['home']}\n" in dockerfile
    assert chart_values()["prometheusRule"]["runbookUrl"].startswith(chart_yaml()["home"] + "/")
    images = yaml.safe_load(chart_yaml()["annotations"]["artifacthub.io/images"])
    assert images == [
        {"name": "modelarts-exporter", "image": f"{repository}:{chart_yaml()['appVersion']}"}
    ]


# -- the chart's README ------------------------------------------------------------------


def test_helm_show_readme_is_the_generated_readme() -> None:
    shown = helm.show(str(CHART), output_format="readme")
    readme = (CHART / "README.md").read_text()
    assert shown.strip() == readme.strip()
    assert f"--version {chart_yaml()['version']}" in readme
    assert "oci://ghcr.io/" in readme and "helm test" in readme
    for key in ("networkPolicy.enabled", "podDisruptionBudget.minAvailable", "test.enabled"):
        assert f"| `{key}` |" in readme


def test_the_packaged_chart_has_the_readme_and_not_the_ci_values(tmp_path: Path) -> None:
    archive = helm.package(CHART, destination=tmp_path)
    with tarfile.open(archive) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames()}
    assert "README.md" in names and "values.schema.json" in names
    assert "templates/tests/test-ready.yaml" in names
    assert not [name for name in names if name.startswith("ci/")]


def test_a_stale_chart_readme_fails_the_check(tmp_path: Path) -> None:
    chart = tmp_path / "helm" / "modelarts-exporter"
    shutil.copytree(CHART, chart)
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "helm.md", tmp_path / "docs" / "helm.md")
    check = ("helm-values-table.py", "--check", "--root", str(tmp_path))
    assert run_script(*check).returncode == 0

    readme = chart / "README.md"
    readme.write_text(readme.read_text().replace("| `test.enabled` |", "| `test.on` |"))
    result = run_script(*check)
    assert result.returncode == 1 and "helm/modelarts-exporter/README.md" in result.stderr
    assert "docs/helm.md" not in result.stderr

    assert run_script("helm-values-table.py", "--root", str(tmp_path)).returncode == 0
    assert run_script(*check).returncode == 0
    values = chart / "values.yaml"
    values.write_text(values.read_text().replace("Render the `helm test` pod", "Render a pod"))
    result = run_script(*check)
    assert result.returncode == 1
    assert "helm/modelarts-exporter/README.md" in result.stderr and "docs/helm.md" in result.stderr


# -- chart-testing -----------------------------------------------------------------------


def ci_values() -> list[tuple[str, dict[str, Any]]]:
    files = sorted((CHART / "ci").glob("*-values.yaml"))
    assert files, "no ci/*-values.yaml for chart-testing"
    return [(path.name, yaml.safe_load(path.read_text())) for path in files]


@pytest.mark.parametrize(("name", "values"), [pytest.param(n, v, id=n) for n, v in ci_values()])
def test_chart_testing_values_lint_render_and_validate(name: str, values: dict[str, Any]) -> None:
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version="v1.31.0")
    assert report["messages"] == [] and report["errors"] == [], name
    objects = render(values)
    for obj in objects:
        # ct install runs in a bare cluster: no Prometheus Operator CRDs.
        assert obj["kind"] in CORE_KINDS, f"{name}: {obj['kind']} needs a CRD"
        for kube_version in KUBE_VERSIONS:
            kubernetes_validate.validate(obj, kube_version, strict=True)
    assert [o for o in objects if is_test_hook(o)], "ct install runs helm test"
    # Ready without a Huawei Cloud account, so that `helm test` can pass in CI.
    assert values["config"]["demo"] is True
    assert "WARNING" not in notes(values)


def test_chart_testing_covers_the_budget_and_the_network_policy() -> None:
    rendered = {kind for _, values in ci_values() for kind in kinds(render(values))}
    assert {"PodDisruptionBudget", "NetworkPolicy", "Secret"} <= rendered


def test_chart_testing_config_finds_the_chart() -> None:
    config = yaml.safe_load((ROOT / "ct.yaml").read_text())
    assert [ROOT / d for d in config["chart-dirs"]] == [CHART.parent]
    assert config["target-branch"] == "main"


def test_the_docs_install_the_current_chart_version() -> None:
    text = (ROOT / "docs" / "helm.md").read_text()
    versions = re.findall(r"--version (\S+)", text)
    assert versions and set(versions) == {chart_yaml()["version"]}
    assert "oci://ghcr.io/modelarts-exporter/charts/modelarts-exporter" in text
