"""`sharding`: the targets shared by the pods of a StatefulSet, each pod its ordinal's shard.

Rendered by the real Helm engine; see chart.py. A missing tool fails these tests."""

from __future__ import annotations

import shutil
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from tests.deploy.chart import (
    ALL_OPTIONS,
    CHART,
    CORE_KINDS,
    FULLNAME,
    KUBE_VERSIONS,
    MULTI_OPTIONS,
    NAMESPACE,
    OPERATOR_KINDS,
    RELEASE,
    TARGET_OPTIONS,
    kinds,
    merged,
    notes,
    one,
    render,
    render_error,
)

HEADLESS = f"{FULLNAME}-headless"
SHARDED = merged(
    TARGET_OPTIONS,
    {
        "sharding": {"enabled": True, "shards": 3},
        "serviceMonitor": {"enabled": True, "probeTargets": False},
        "podDisruptionBudget": {"enabled": True},
        "networkPolicy": {
            "enabled": True,
            "from": {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}},
        },
        "extraArgs": ["--page-concurrency=8"],
    },
)


def exporter_container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["exporter"]
    return dict(containers[0])


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions) against labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not ok:
            return False
    return True


def services(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}


def pod_labels(objects: list[dict[str, Any]]) -> dict[str, str]:
    labels = dict(one(objects, "StatefulSet")["spec"]["template"]["metadata"]["labels"])
    # The StatefulSet controller adds these to every pod; the chart must not rely on more.
    labels["apps.kubernetes.io/pod-index"] = "0"
    labels["statefulset.kubernetes.io/pod-name"] = f"{FULLNAME}-0"
    return labels


# -- what renders ------------------------------------------------------------------------


def test_sharding_renders_a_statefulset_and_a_headless_service_instead_of_the_deployment():
    objects = render(SHARDED)
    assert "Deployment" not in kinds(objects)
    assert kinds(objects).count("StatefulSet") == 1
    assert sorted(services(objects)) == [FULLNAME, HEADLESS]


@pytest.mark.parametrize("kube_version", [KUBE_VERSIONS[-1]])
def test_the_sharded_objects_validate_strictly(kube_version):
    objects = render(SHARDED)
    core = CORE_KINDS | {"StatefulSet"}
    assert {o["kind"] for o in objects} <= core | OPERATOR_KINDS, "unvalidated kind"
    validated = []
    for obj in objects:
        if obj["kind"] in core:
            kubernetes_validate.validate(obj, kube_version, strict=True)
            validated.append(obj["kind"])
    assert {"StatefulSet", "Service", "PodDisruptionBudget", "NetworkPolicy"} <= set(validated)


def test_the_statefulset_runs_one_pod_per_shard_governed_by_the_headless_service():
    objects = render(SHARDED)
    spec = one(objects, "StatefulSet")["spec"]
    assert spec["replicas"] == 3
    assert spec["serviceName"] == HEADLESS
    assert spec["podManagementPolicy"] == "Parallel"
    assert selects(spec["selector"], spec["template"]["metadata"]["labels"])
    headless = services(objects)[HEADLESS]["spec"]
    assert headless["clusterIP"] == "None"
    assert "type" not in headless or headless["type"] == "ClusterIP"
    assert selects({"matchLabels": headless["selector"]}, pod_labels(objects))
    assert headless["ports"] == [
        {"name": "metrics", "port": 10200, "targetPort": "metrics", "protocol": "TCP"}
    ]


def test_each_pod_is_told_its_shard_from_its_ordinal():
    objects = render(SHARDED)
    exporter = exporter_container(one(objects, "StatefulSet"))
    assert exporter["args"] == ["--config.shard=$(POD_INDEX)/3", "--page-concurrency=8"]
    env = {e["name"]: e for e in exporter["env"]}
    assert env["POD_INDEX"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}
    }
    # $(POD_INDEX) in args is expanded by the kubelet from the container's environment.
    assert [e["name"] for e in exporter["env"]].index("POD_INDEX") == 0
    assert env["MODELARTS_EXPORTER_CONFIG_FILE"]["value"].endswith("targets.yml")
    assert "MODELARTS_EXPORTER_CONFIG_SHARD" not in env


def test_the_shard_count_follows_the_value():
    objects = render(merged(SHARDED, {"sharding": {"shards": 5}, "extraArgs": []}))
    statefulset = one(objects, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 5
    assert exporter_container(statefulset)["args"] == ["--config.shard=$(POD_INDEX)/5"]


# -- who selects the pods ----------------------------------------------------------------


def test_the_servicemonitor_scrapes_each_pod_once_through_the_service():
    objects = render(SHARDED)
    selector = one(objects, "ServiceMonitor")["spec"]["selector"]
    by_name = services(objects)
    chosen = [name for name, svc in by_name.items() if selects(selector, svc["metadata"]["labels"])]
    assert chosen == [FULLNAME]  # not the headless one too: each pod would be scraped twice
    # The Service's endpoints are the StatefulSet's pods, every one a target of its own.
    service = by_name[FULLNAME]["spec"]
    assert selects({"matchLabels": service["selector"]}, pod_labels(objects))
    endpoints = one(objects, "ServiceMonitor")["spec"]["endpoints"]
    assert [(e["port"], e["path"]) for e in endpoints] == [("metrics", "/metrics")]


def test_the_budget_and_the_network_policy_select_the_statefulset_pods():
    objects = render(merged(SHARDED, {"replicaCount": 1}))
    budget = one(objects, "PodDisruptionBudget")  # 3 shards: there is one despite replicaCount
    assert selects(budget["spec"]["selector"], pod_labels(objects))
    policy = one(objects, "NetworkPolicy")
    assert selects(policy["spec"]["podSelector"], pod_labels(objects))


def test_one_shard_has_no_budget():
    objects = render(merged(SHARDED, {"sharding": {"shards": 1}, "replicaCount": 3}))
    assert "PodDisruptionBudget" not in kinds(objects)


def test_the_notes_point_at_the_statefulset():
    text = notes(SHARDED)
    assert f"logs statefulset/{FULLNAME}" in text and "3 shards" in text
    assert f"port-forward pod/{FULLNAME}-0" in text and "/probe?" not in text


# -- the default install is unchanged ----------------------------------------------------


@pytest.mark.parametrize(
    "values", [{}, ALL_OPTIONS, MULTI_OPTIONS], ids=["defaults", "all-options", "multi"]
)
def test_sharding_off_changes_nothing(values):
    off = merged(values, {"sharding": {"enabled": False, "shards": 7}})
    assert render(off) == render(values)
    objects = render(values)
    assert "StatefulSet" not in kinds(objects) and "Deployment" in kinds(objects)
    assert HEADLESS not in services(objects)
    monitor = [o for o in objects if o["kind"] == "ServiceMonitor"]
    assert all("matchExpressions" not in m["spec"]["selector"] for m in monitor)


def test_the_values_default_to_off():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["sharding"] == {"enabled": False, "shards": 2}


# -- what is refused ---------------------------------------------------------------------


def test_sharding_needs_targets():
    error = render_error({"sharding": {"enabled": True}})
    assert "sharding.enabled needs targets" in error


def test_sharding_and_probe_targets_are_exclusive():
    error = render_error(merged(SHARDED, {"serviceMonitor": {"probeTargets": True}}))
    assert "sharding.enabled and serviceMonitor.probeTargets are exclusive" in error


@pytest.mark.parametrize(
    "sharding", [{"shards": 0}, {"shards": "2"}, {"replicas": 2}], ids=["0", "string", "unknown"]
)
def test_the_schema_refuses_bad_sharding(sharding):
    render_error(merged(SHARDED, {"sharding": sharding}))


@pytest.mark.parametrize(
    ("version", "refused"),
    [("v1.25.16", True), ("v1.27.9-gke.100", True), ("v1.28.0", False), ("v1.33.1", False)],
)
def test_sharding_needs_kubernetes_1_28(tmp_path, version, refused):
    """The chart's own check, given a cluster version (offline rendering has no way to
    set .Capabilities, so a template of a copy of the chart calls the check with one)."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    probe = (
        '{{- include "modelarts-exporter.checkSharding" (dict "Values" .Values '
        f'"Capabilities" (dict "KubeVersion" (dict "Version" "{version}"))) }}}}\n'
    )
    (chart / "templates" / "zz-kube-version.yaml").write_text(probe)
    with helm.Chart.load(chart) as loaded:
        if refused:
            with pytest.raises(helm.HelmError) as caught:
                loaded.render(SHARDED, name=RELEASE, namespace=NAMESPACE, is_install=True)
            assert "sharding.enabled needs Kubernetes 1.28 or later" in str(caught.value)
            assert version in str(caught.value)
        else:
            loaded.render(SHARDED, name=RELEASE, namespace=NAMESPACE, is_install=True)


def test_lint_is_clean_with_sharding():
    report = helm.lint(CHART, SHARDED, strict=True, namespace=NAMESPACE, kube_version="v1.31.0")
    assert report["messages"] == [] and report["errors"] == []


def test_the_headless_service_name_fits_a_dns_label():
    objects = render(merged(SHARDED, {"fullnameOverride": "x" * 63}))
    names = sorted(services(objects))
    assert names == ["x" * 54 + "-headless", "x" * 63]
