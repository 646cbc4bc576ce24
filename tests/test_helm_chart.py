"""The Helm chart, rendered by the real Helm engine (helm-python-sdk, offline).

Core objects are validated against the Kubernetes OpenAPI schemas (kubernetes-validate,
strict: unknown fields fail); the Prometheus Operator objects, which have no schema there,
are checked field by field, and the PrometheusRule's groups by `promtool check rules`.
A missing tool fails these tests; it never skips them.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "modelarts-exporter"
EXAMPLES = ROOT / "helm" / "examples"
RELEASE, NAMESPACE = "mx", "monitoring"
FULLNAME = "mx-modelarts-exporter"
PORT = 10200

# Oldest Kubernetes the chart promises (Chart.yaml kubeVersion is older still) and the
# newest kubernetes-validate knows.
KUBE_VERSIONS = ("1.31.0", kubernetes_validate.utils.latest_version())
CORE_KINDS = {"Deployment", "Service", "ServiceAccount", "Secret", "ConfigMap"}
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}

# Every option that shapes the workload; it needs none of the chart's copied files.
WORKLOAD_OPTIONS: dict[str, Any] = {
    "commonLabels": {"team": "ml-platform"},
    "image": {"tag": "0.1.0-rc1", "pullPolicy": "Always"},
    "imagePullSecrets": [{"name": "regcred"}],
    "config": {
        "region": "cn-north-4",
        "projectId": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "endpoint": "https://modelarts.cn-north-4.myhuaweicloud.com",
        "iamEndpoint": "https://iam.cn-north-4.myhuaweicloud.com",
        "api": "both",
        "cacheTTL": 45,
        "maxStaleness": 600,
        "pageSize": 1000000,
        "requestTimeout": 2.5,
        "refreshBudget": 8,
        "showSelf": False,
        "poolId": "pool-7f3c2a91",
        "workspaceId": "0",
        "logLevel": "debug",
        "logFormat": "json",
        "demo": False,
    },
    "auth": {
        "mode": "aksk",
        "createSecret": True,
        "values": {"accessKey": "AKEXAMPLE", "secretKey": "sk-example", "securityToken": "st"},
        "secretKeys": {"securityToken": "securityToken"},
        "secretsAs": "file",
    },
    "extraArgs": ["--page-concurrency=8"],
    "extraEnv": [{"name": "TZ", "value": "UTC"}],
    "extraEnvFrom": [{"configMapRef": {"name": "proxy-settings"}}],
    "extraVolumes": [{"name": "ca", "configMap": {"name": "corporate-ca"}}],
    "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/corporate", "readOnly": True}],
    "serviceAccount": {"annotations": {"example.com/role": "exporter"}},
    "podAnnotations": {"example.com/scrape": "false"},
    "podLabels": {"tier": "monitoring"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "monitoring", "effect": "NoSchedule"}
    ],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/arch",
                                "operator": "In",
                                "values": ["amd64", "arm64"],
                            }
                        ]
                    }
                ]
            }
        }
    },
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "modelarts-exporter"}},
        }
    ],
    "priorityClassName": "monitoring",
    "service": {"annotations": {"example.com/owner": "ml"}, "labels": {"exposed": "no"}},
    "serviceMonitor": {
        "enabled": True,
        "labels": {"release": "kube-prometheus-stack"},
        "interval": "1m",
        "scrapeTimeout": "15s",
        "relabelings": [{"targetLabel": "cluster", "replacement": "prod-1"}],
        "metricRelabelings": [{"sourceLabels": ["__name__"], "regex": "go_.*", "action": "drop"}],
    },
}
# The parts shipping the copies of prometheus/ and grafana/dashboards/.
RULE_OPTIONS: dict[str, Any] = {
    "prometheusRule": {
        "enabled": True,
        "labels": {"release": "kube-prometheus-stack"},
        "extraGroups": [
            {
                "name": "site-specific",
                "rules": [
                    {
                        "alert": "TooManyRunningNotebooks",
                        "expr": 'sum(modelarts_notebook_instances{status="RUNNING"}) > 100',
                        "for": "1h",
                    }
                ],
            }
        ],
    },
}
DASHBOARD_OPTIONS: dict[str, Any] = {
    "dashboards": {"enabled": True, "annotations": {"grafana_folder": "ModelArts"}},
}

# Several projects in one release, each scraped at /probe, behind TLS and basic auth.
RESEARCH_KEYS = "/etc/modelarts-exporter/secrets/research-keys"
TARGET_OPTIONS: dict[str, Any] = {
    "config": {"cacheTTL": 45},
    "auth": {"mode": "aksk", "existingSecret": "modelarts-credentials"},
    "targets": [
        {
            "name": "training",
            "region": "cn-north-4",
            "project_id": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        },
        {
            "name": "research",
            "region": "cn-southwest-2",
            "project_id": "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
            "api": "both",
            "cache_ttl": 60,
            "auth": {
                "mode": "aksk",
                "ak": {"file": f"{RESEARCH_KEYS}/accessKey"},
                "sk": {"file": f"{RESEARCH_KEYS}/secretKey"},
            },
        },
        {
            "name": "inference.shanghai",
            "region": "cn-east-3",
            "project_id": "00112233445566778899aabbccddeeff",
            "auth": {"ak": {"env": "INFERENCE_AK"}, "sk": {"env": "INFERENCE_SK"}},
        },
    ],
    "targetSecrets": [{"name": "research-keys"}, {"name": "inference-keys", "as": "env"}],
    "serviceMonitor": {"enabled": True, "probeTargets": True},
}
WEB_OPTIONS: dict[str, Any] = {
    "webConfig": {"existingSecret": "exporter-web", "tlsSecret": "exporter-tls", "tls": True},
    "serviceMonitor": {
        "enabled": True,
        "tlsConfig": {
            "ca": {"secret": {"name": "exporter-tls", "key": "ca.crt"}},
            "serverName": "modelarts-exporter.monitoring.svc",
        },
        "basicAuth": {
            "username": {"name": "scrape-auth", "key": "username"},
            "password": {"name": "scrape-auth", "key": "password"},
        },
    },
}


# -- helpers -----------------------------------------------------------------------------


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge values like repeated `-f` files: later layers win, maps merge."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


ALL_OPTIONS = merged(WORKLOAD_OPTIONS, RULE_OPTIONS, DASHBOARD_OPTIONS)
# Every option of several projects and a locked-down endpoint, with the same labels.
MULTI_OPTIONS = merged(
    {key: WORKLOAD_OPTIONS[key] for key in ("commonLabels", "image")},
    TARGET_OPTIONS,
    WEB_OPTIONS,
    RULE_OPTIONS,
    DASHBOARD_OPTIONS,
)
MUTUAL_TLS = merged(TARGET_OPTIONS, WEB_OPTIONS, {"webConfig": {"requireClientCert": True}})


def render_raw(values: dict[str, Any] | None = None, name: str = RELEASE) -> dict[str, str]:
    with helm.Chart.load(CHART) as chart:
        return chart.render(values or {}, name=name, namespace=NAMESPACE, is_install=True)


def render(values: dict[str, Any] | None = None, name: str = RELEASE) -> list[dict[str, Any]]:
    """Every object the chart renders, parsed."""
    objects = []
    for path, text in sorted(render_raw(values, name).items()):
        if path.endswith("NOTES.txt"):
            continue
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def notes(values: dict[str, Any] | None = None) -> str:
    manifests = render_raw(values)
    return next(text for path, text in manifests.items() if path.endswith("NOTES.txt"))


def render_error(values: dict[str, Any]) -> str:
    with pytest.raises(helm.HelmError) as caught:
        render_raw(values)
    return str(caught.value)


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def kinds(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["exporter"]
    return dict(containers[0])


def env_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The container's environment: name -> value, or the valueFrom object."""
    env = container(objects).get("env", [])
    names = [e["name"] for e in env]
    assert len(names) == len(set(names)), f"duplicate environment variables: {names}"
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in env}


def load_script(name: str) -> ModuleType:
    path = ROOT / "scripts" / name
    module_name = path.stem.replace("-", "_")
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def require_tool(name: str) -> str:
    """A tool the test needs; missing, the test fails (it is never skipped)."""
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.fail(f"{name} is not installed (promtool: Debian package prometheus)")
    return path


def rule_sources() -> list[Path]:
    sync = load_script("sync-chart-assets.py")
    files = sorted(p for p in (ROOT / "prometheus").glob("*.yml") if sync.is_rule_file(p))
    if not files:
        pytest.fail(
            "prometheus/ holds no rule file (*.yml with `groups:`): nothing for the chart to ship"
        )
    return files


def dashboard_sources() -> list[Path]:
    files = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
    if not files:
        pytest.fail(
            "grafana/dashboards/ holds no dashboard (*.json): nothing for the chart to ship"
        )
    return files


def source_groups() -> list[dict[str, Any]]:
    return [g for path in rule_sources() for g in yaml.safe_load(path.read_text())["groups"]]


# -- lint and what renders ---------------------------------------------------------------


@pytest.mark.parametrize(
    "values", [None, ALL_OPTIONS, MULTI_OPTIONS], ids=["defaults", "all-options", "multi"]
)
def test_lint_is_clean(values: dict[str, Any] | None) -> None:
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version="v1.31.0")
    findings = [
        m
        for m in report["messages"]
        # An icon needs a URL the chart cannot vouch for; helm reports it as information only.
        if not (m["severity"] == 1 and m["error"] == "icon is recommended")
    ]
    assert report["total_charts_linted"] == 1
    assert findings == [] and report["errors"] == []


def test_default_install_renders_the_core_objects_only() -> None:
    assert kinds(render()) == ["Deployment", "Service", "ServiceAccount"]


def test_all_options_render_every_kind() -> None:
    objects = render(ALL_OPTIONS)
    dashboards = len(dashboard_sources())
    assert kinds(objects) == sorted(
        ["ConfigMap"] * dashboards
        + ["Deployment", "PrometheusRule", "Secret", "Service", "ServiceAccount", "ServiceMonitor"]
    )


@pytest.mark.parametrize("values", [ALL_OPTIONS, MULTI_OPTIONS], ids=["all-options", "multi"])
def test_every_object_is_in_the_release_namespace_and_labelled(values: dict[str, Any]) -> None:
    objects = render(values)
    for obj in objects:
        meta = obj["metadata"]
        assert meta["namespace"] == NAMESPACE, obj["kind"]
        assert meta["name"].startswith(FULLNAME), obj["kind"]
        labels = meta["labels"]
        assert labels["app.kubernetes.io/name"] == "modelarts-exporter"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "0.1.0-rc1"
        assert labels["helm.sh/chart"] == "modelarts-exporter-" + chart_yaml()["version"]
        assert labels["team"] == "ml-platform"


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize(
    "values",
    [
        None,
        ALL_OPTIONS,
        merged(WORKLOAD_OPTIONS, {"auth": {"secretsAs": "env"}}),
        {
            "auth": {
                "mode": "iam",
                "existingSecret": "creds",
                "iam": {"username": "u", "domain": "d"},
            }
        },
        {
            "config": {"demo": True},
            "serviceAccount": {"create": False},
            "service": {"type": "NodePort"},
        },
        MULTI_OPTIONS,
        merged(  # every kind of volume at once
            MUTUAL_TLS,
            {"auth": {"secretsAs": "file"}},
            {key: WORKLOAD_OPTIONS[key] for key in ("extraVolumes", "extraVolumeMounts")},
        ),
    ],
    ids=["defaults", "all-options", "workload-env", "iam", "demo", "multi", "mutual-tls"],
)
def test_core_objects_pass_strict_kubernetes_validation(
    values: dict[str, Any] | None, kube_version: str
) -> None:
    objects = render(values)
    assert {o["kind"] for o in objects} <= CORE_KINDS | OPERATOR_KINDS, "unvalidated kind"
    for obj in objects:
        if obj["kind"] in CORE_KINDS:
            kubernetes_validate.validate(obj, kube_version, strict=True)


def test_two_releases_do_not_collide() -> None:
    first = {(o["kind"], o["metadata"]["name"]) for o in render(WORKLOAD_OPTIONS, name="prod")}
    second = {(o["kind"], o["metadata"]["name"]) for o in render(WORKLOAD_OPTIONS, name="staging")}
    assert not first & second
    assert (
        one(render(name="prod"), "Deployment")["spec"]["selector"]["matchLabels"]
        != one(render(name="staging"), "Deployment")["spec"]["selector"]["matchLabels"]
    )


# -- the Deployment ----------------------------------------------------------------------


def test_pod_meets_the_restricted_pod_security_standard() -> None:
    objects = render()
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    ctx = container(objects)["securityContext"]
    pod_ctx = pod["securityContext"]
    assert pod_ctx["runAsNonRoot"] is True and pod_ctx["runAsUser"] == 65532
    assert pod_ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 65532
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert not pod.get("hostNetwork") and not pod.get("hostPID")


def test_no_service_link_variables_reach_the_exporter() -> None:
    # A release named modelarts-exporter has a Service of that name, whose links would be
    # MODELARTS_EXPORTER_PORT=tcp://... and the like: the exporter's own prefix.
    objects = render(name="modelarts-exporter")
    assert one(objects, "Service")["metadata"]["name"] == "modelarts-exporter"
    assert one(objects, "Deployment")["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_probes_ports_and_resources() -> None:
    objects = render()
    c = container(objects)
    assert c["ports"] == [{"name": "metrics", "containerPort": PORT, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "metrics"}
    assert env_of(objects)["MODELARTS_EXPORTER_WEB_LISTEN_ADDRESS"] == f":{PORT}"
    assert c["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"memory": "256Mi"},
    }
    assert c["image"] == chart_values()["image"]["repository"] + ":" + chart_yaml()["appVersion"]
    assert "args" not in c


def test_probe_timing_and_image_digest_are_configurable() -> None:
    objects = render(
        {
            "livenessProbe": {"initialDelaySeconds": 7},
            "image": {"digest": "sha256:" + "ab" * 32, "tag": "ignored"},
        }
    )
    c = container(objects)
    assert c["livenessProbe"]["initialDelaySeconds"] == 7
    assert c["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert c["image"] == chart_values()["image"]["repository"] + "@sha256:" + "ab" * 32


def test_service_and_deployment_select_the_same_pods() -> None:
    objects = render()
    deployment, service = one(objects, "Deployment"), one(objects, "Service")
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": PORT, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == FULLNAME


def test_pod_placement_and_extras_are_passed_through() -> None:
    objects = render(WORKLOAD_OPTIONS)
    pod = one(objects, "Deployment")["spec"]["template"]
    spec = pod["spec"]
    c = container(objects)
    for key in (
        "nodeSelector",
        "tolerations",
        "affinity",
        "topologySpreadConstraints",
        "priorityClassName",
    ):
        assert spec[key] == WORKLOAD_OPTIONS[key], key
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["metadata"]["annotations"]["example.com/scrape"] == "false"
    assert pod["metadata"]["labels"]["tier"] == "monitoring"
    assert c["args"] == ["--page-concurrency=8"]
    assert c["imagePullPolicy"] == "Always"
    assert env_of(objects)["TZ"] == "UTC"
    assert c["envFrom"] == WORKLOAD_OPTIONS["extraEnvFrom"]
    assert {"name": "ca", "configMap": {"name": "corporate-ca"}} in spec["volumes"]
    assert WORKLOAD_OPTIONS["extraVolumeMounts"][0] in c["volumeMounts"]
    sa = one(objects, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {"example.com/role": "exporter"}
    assert sa["automountServiceAccountToken"] is False


def test_existing_service_account_is_used_not_created() -> None:
    objects = render({"serviceAccount": {"create": False, "name": "shared-exporters"}})
    assert "ServiceAccount" not in kinds(objects)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "shared-exporters"


# -- settings ----------------------------------------------------------------------------

CONFIG_ENV = {
    "region": "HUAWEICLOUD_SDK_REGION",
    "projectId": "HUAWEICLOUD_SDK_PROJECT_ID",
    "endpoint": "MODELARTS_EXPORTER_ENDPOINT",
    "iamEndpoint": "MODELARTS_EXPORTER_IAM_ENDPOINT",
    "api": "MODELARTS_EXPORTER_API",
    "cacheTTL": "MODELARTS_EXPORTER_CACHE_TTL",
    "maxStaleness": "MODELARTS_EXPORTER_MAX_STALENESS",
    "pageSize": "MODELARTS_EXPORTER_PAGE_SIZE",
    "requestTimeout": "MODELARTS_EXPORTER_REQUEST_TIMEOUT",
    "refreshBudget": "MODELARTS_EXPORTER_REFRESH_BUDGET",
    "showSelf": "MODELARTS_EXPORTER_SHOW_SELF",
    "poolId": "MODELARTS_EXPORTER_POOL_ID",
    "workspaceId": "MODELARTS_EXPORTER_WORKSPACE_ID",
    "logLevel": "MODELARTS_EXPORTER_LOG_LEVEL",
    "logFormat": "MODELARTS_EXPORTER_LOG_FORMAT",
    "demo": "MODELARTS_EXPORTER_DEMO",
}


def test_every_config_value_becomes_its_environment_variable() -> None:
    assert set(CONFIG_ENV) == set(chart_values()["config"]), "a config value without a test"
    env = env_of(render(WORKLOAD_OPTIONS))
    expected = {
        "region": "cn-north-4",
        "projectId": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "endpoint": "https://modelarts.cn-north-4.myhuaweicloud.com",
        "iamEndpoint": "https://iam.cn-north-4.myhuaweicloud.com",
        "api": "both",
        "cacheTTL": "45",
        "maxStaleness": "600",
        "pageSize": "1000000",  # not 1e+06
        "requestTimeout": "2.5",
        "refreshBudget": "8",
        "showSelf": "false",
        "poolId": "pool-7f3c2a91",
        "workspaceId": "0",
        "logLevel": "debug",
        "logFormat": "json",
        "demo": "false",
    }
    assert {key: env[CONFIG_ENV[key]] for key in CONFIG_ENV} == expected


def test_unset_config_values_leave_the_exporter_defaults() -> None:
    env = env_of(render())
    set_by_default = {name for key, name in CONFIG_ENV.items() if name in env}
    assert set_by_default == {"MODELARTS_EXPORTER_DEMO"}
    assert env["MODELARTS_EXPORTER_DEMO"] == "false"
    assert env_of(render({"config": {"demo": True}}))["MODELARTS_EXPORTER_DEMO"] == "true"


def test_chart_sets_only_variables_the_exporter_reads() -> None:
    """Every variable the chart sets is one the exporter's Settings declare."""
    from exporter.config import settings

    env_names = {}
    for name, field in settings.Settings.model_fields.items():
        extra = field.json_schema_extra
        assert isinstance(extra, dict)
        env_names[name] = str(extra["env"])
    known = set(env_names.values())
    known |= {env_names[name] + "_FILE" for name in settings.SECRET_FIELDS}
    rendered: set[str] = set()
    for values in (
        WORKLOAD_OPTIONS,
        merged(WORKLOAD_OPTIONS, {"auth": {"secretsAs": "env"}}),
        {"auth": {"mode": "iam", "existingSecret": "c", "iam": {"username": "u", "domain": "d"}}},
        {
            "auth": {
                "mode": "iam",
                "existingSecret": "c",
                "secretsAs": "file",
                "iam": {"username": "u", "domain": "d"},
            }
        },
        {"auth": {"mode": "token", "existingSecret": "c"}},
        {"auth": {"mode": "token", "existingSecret": "c", "secretsAs": "file"}},
        MULTI_OPTIONS,
    ):
        rendered |= set(env_of(render(values)))
    rendered -= {"TZ"}  # WORKLOAD_OPTIONS.extraEnv
    assert sorted(rendered - known) == []


# -- credentials -------------------------------------------------------------------------


def secret_ref(env: dict[str, Any], name: str) -> dict[str, Any]:
    value = env[name]
    assert isinstance(value, dict), f"{name} is a plain value, not from a Secret"
    return dict(value["secretKeyRef"])


def test_existing_secret_with_aksk_mode() -> None:
    objects = render({"auth": {"mode": "aksk", "existingSecret": "modelarts-credentials"}})
    env = env_of(objects)
    assert "Secret" not in kinds(objects)
    assert env["MODELARTS_EXPORTER_AUTH_MODE"] == "aksk"
    assert secret_ref(env, "HUAWEICLOUD_SDK_AK") == {
        "name": "modelarts-credentials",
        "key": "accessKey",
    }
    assert secret_ref(env, "HUAWEICLOUD_SDK_SK") == {
        "name": "modelarts-credentials",
        "key": "secretKey",
    }
    assert "HUAWEICLOUD_SDK_SECURITY_TOKEN" not in env  # its key name is empty by default
    assert not {"MODELARTS_EXPORTER_IAM_PASSWORD", "MODELARTS_EXPORTER_AUTH_TOKEN"} & set(env)


def test_existing_secret_key_names_are_configurable() -> None:
    env = env_of(
        render(
            {
                "auth": {
                    "mode": "aksk",
                    "existingSecret": "creds",
                    "secretKeys": {"accessKey": "AK", "secretKey": "SK", "securityToken": "STS"},
                }
            }
        )
    )
    assert secret_ref(env, "HUAWEICLOUD_SDK_AK")["key"] == "AK"
    assert secret_ref(env, "HUAWEICLOUD_SDK_SK")["key"] == "SK"
    assert secret_ref(env, "HUAWEICLOUD_SDK_SECURITY_TOKEN") == {
        "name": "creds",
        "key": "STS",
        "optional": True,
    }


def test_auto_mode_reads_every_named_key_optionally() -> None:
    env = env_of(render({"auth": {"existingSecret": "creds"}}))
    assert env["MODELARTS_EXPORTER_AUTH_MODE"] == "auto"
    for name, key in (
        ("HUAWEICLOUD_SDK_AK", "accessKey"),
        ("HUAWEICLOUD_SDK_SK", "secretKey"),
        ("MODELARTS_EXPORTER_IAM_PASSWORD", "iamPassword"),
        ("MODELARTS_EXPORTER_AUTH_TOKEN", "token"),
    ):
        assert secret_ref(env, name) == {"name": "creds", "key": key, "optional": True}
    assert "HUAWEICLOUD_SDK_SECURITY_TOKEN" not in env


def test_iam_mode() -> None:
    env = env_of(
        render(
            {
                "auth": {
                    "mode": "iam",
                    "existingSecret": "creds",
                    "iam": {"username": "bot", "domain": "acme"},
                }
            }
        )
    )
    assert env["MODELARTS_EXPORTER_IAM_USERNAME"] == "bot"
    assert env["MODELARTS_EXPORTER_IAM_DOMAIN"] == "acme"
    assert secret_ref(env, "MODELARTS_EXPORTER_IAM_PASSWORD") == {
        "name": "creds",
        "key": "iamPassword",
    }
    assert "HUAWEICLOUD_SDK_AK" not in env


def test_token_mode() -> None:
    env = env_of(render({"auth": {"mode": "token", "existingSecret": "creds"}}))
    assert secret_ref(env, "MODELARTS_EXPORTER_AUTH_TOKEN") == {"name": "creds", "key": "token"}
    assert "HUAWEICLOUD_SDK_AK" not in env


def test_ecs_mode_reads_no_secret() -> None:
    objects = render({"auth": {"mode": "ecs", "existingSecret": "ignored"}})
    env = env_of(objects)
    assert env["MODELARTS_EXPORTER_AUTH_MODE"] == "ecs"
    assert not [name for name, value in env.items() if isinstance(value, dict)]
    assert "Secret" not in kinds(objects)


def test_secrets_as_files() -> None:
    objects = render({"auth": {"mode": "aksk", "existingSecret": "creds", "secretsAs": "file"}})
    env = env_of(objects)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert env["HUAWEICLOUD_SDK_AK_FILE"] == "/etc/modelarts-exporter/credentials/accessKey"
    assert env["HUAWEICLOUD_SDK_SK_FILE"] == "/etc/modelarts-exporter/credentials/secretKey"
    assert not [name for name, value in env.items() if isinstance(value, dict)], "a secret in env"
    assert "HUAWEICLOUD_SDK_AK" not in env
    assert pod["volumes"] == [
        {
            "name": "credentials",
            "secret": {
                "secretName": "creds",
                "defaultMode": 0o440,
                "items": [
                    {"key": "accessKey", "path": "accessKey"},
                    {"key": "secretKey", "path": "secretKey"},
                ],
            },
        }
    ]
    assert container(objects)["volumeMounts"] == [
        {
            "name": "credentials",
            "mountPath": "/etc/modelarts-exporter/credentials",
            "readOnly": True,
        }
    ]
    assert pod["securityContext"]["fsGroup"] == 65532  # group-readable 0440 files


def test_chart_created_secret() -> None:
    values = {
        "auth": {
            "mode": "aksk",
            "createSecret": True,
            "values": {"accessKey": "AK1", "secretKey": "S/K+1"},
        }
    }
    objects = render(values)
    secret = one(objects, "Secret")
    assert secret["metadata"]["name"] == FULLNAME
    assert secret["type"] == "Opaque"
    decoded = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert decoded == {"accessKey": "AK1", "secretKey": "S/K+1"}
    env = env_of(objects)
    assert secret_ref(env, "HUAWEICLOUD_SDK_AK") == {"name": FULLNAME, "key": "accessKey"}

    def checksum(v: dict[str, Any]) -> str:
        pod = one(render(v), "Deployment")["spec"]["template"]
        return str(pod["metadata"]["annotations"]["checksum/secret"])

    rotated = merged(values, {"auth": {"values": {"secretKey": "rotated"}}})
    assert checksum(values) != checksum(rotated), "pods must roll when the secret changes"


def test_chart_created_secret_in_auto_mode_holds_what_is_given() -> None:
    objects = render({"auth": {"createSecret": True, "values": {"token": "t0k"}}})
    assert set(one(objects, "Secret")["data"]) == {"token"}
    env = env_of(objects)
    assert secret_ref(env, "MODELARTS_EXPORTER_AUTH_TOKEN") == {"name": FULLNAME, "key": "token"}
    assert "HUAWEICLOUD_SDK_AK" not in env


CREDENTIALS_DIR = "/etc/modelarts-exporter/credentials"
SECRET_DATA = {"accessKey": "AK1", "secretKey": "SK1", "iamPassword": "pw", "token": "t0k"}


def container_environment(
    values: dict[str, Any], secret: dict[str, str], files_dir: Path
) -> dict[str, str]:
    """The environment the exporter would see: secretKeyRefs resolved from `secret`, the
    mounted credentials written under `files_dir` (and the _FILE paths moved there)."""
    objects = render(values)
    environment: dict[str, str] = {}
    for name, value in env_of(objects).items():
        if isinstance(value, dict):
            ref = value["secretKeyRef"]
            if ref["key"] in secret:
                environment[name] = secret[ref["key"]]
            else:
                assert ref.get("optional"), f"{name}: missing key {ref['key']} is not optional"
        elif name.endswith("_FILE"):
            assert value.startswith(CREDENTIALS_DIR + "/")
            environment[name] = str(files_dir / Path(value).name)
        else:
            environment[name] = value
    for volume in one(objects, "Deployment")["spec"]["template"]["spec"].get("volumes", []):
        for item in volume.get("secret", {}).get("items", []):
            (files_dir / item["path"]).write_text(secret[item["key"]] + "\n")
    return environment


@pytest.mark.parametrize(
    ("values", "secret", "mode"),
    [
        ({"auth": {"mode": "aksk", "existingSecret": "c"}}, SECRET_DATA, "aksk"),
        (
            {"auth": {"mode": "aksk", "existingSecret": "c", "secretsAs": "file"}},
            SECRET_DATA,
            "aksk",
        ),
        (
            {
                "auth": {
                    "mode": "iam",
                    "existingSecret": "c",
                    "iam": {"username": "u", "domain": "d"},
                }
            },
            SECRET_DATA,
            "iam",
        ),
        (
            {"auth": {"mode": "token", "existingSecret": "c", "secretsAs": "file"}},
            SECRET_DATA,
            "token",
        ),
        ({"auth": {"existingSecret": "c"}}, {"accessKey": "AK1", "secretKey": "SK1"}, "aksk"),
        ({"auth": {"createSecret": True, "values": {"token": "t0k"}}}, {"token": "t0k"}, "token"),
        ({"auth": {"mode": "ecs"}}, {}, "ecs"),
    ],
    ids=["aksk", "aksk-files", "iam", "token-files", "auto-aksk", "created-token", "ecs"],
)
def test_exporter_accepts_the_rendered_environment(
    values: dict[str, Any],
    secret: dict[str, str],
    mode: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from exporter.config.settings import load_settings

    base = {"config": {"region": "cn-north-4", "projectId": "p1", "cacheTTL": 45}}
    environment = container_environment(merged(base, values), secret, tmp_path)
    for name in list(os.environ):
        if name.startswith(("MODELARTS_EXPORTER_", "HUAWEICLOUD_SDK_")):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = load_settings({})
    assert settings.effective_auth_mode == mode
    assert settings.project_id == "p1" and settings.cache_ttl == 45
    assert settings.web_listen_address == f":{PORT}"


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"existingSecret": "a", "createSecret": True}, "exclusive"),
        ({"existingSecret": "a", "secretsAs": "file"}, "explicit auth.mode"),
        ({"mode": "aksk"}, "auth.mode=aksk needs credentials"),
        ({"mode": "token"}, "auth.mode=token needs credentials"),
        (
            {"mode": "aksk", "createSecret": True, "values": {"accessKey": "a"}},
            "auth.values.secretKey",
        ),
        ({"mode": "iam", "existingSecret": "a"}, "auth.iam.username and auth.iam.domain"),
        ({"mode": "iam", "existingSecret": "a", "iam": {"username": "u"}}, "auth.iam.domain"),
        (
            {"mode": "aksk", "existingSecret": "a", "secretKeys": {"secretKey": ""}},
            "auth.secretKeys.secretKey",
        ),
        (
            {"createSecret": True, "values": {"securityToken": "s"}},
            "auth.secretKeys.securityToken is empty",
        ),
    ],
)
def test_unworkable_credentials_fail_the_render(auth: dict[str, Any], message: str) -> None:
    assert message in render_error({"auth": auth})


# -- several projects: the targets file --------------------------------------------------

# What the Secrets of TARGET_OPTIONS hold.
TARGET_SECRETS = {
    "modelarts-credentials": {"accessKey": "AK-release", "secretKey": "SK-release"},
    "research-keys": {"accessKey": "AK-research", "secretKey": "SK-research"},
    "inference-keys": {"INFERENCE_AK": "AK-inference", "INFERENCE_SK": "SK-inference"},
}
POD_DIR = "/etc/modelarts-exporter/"


def pod_filesystem(
    objects: list[dict[str, Any]], secrets: dict[str, dict[str, str]], root: Path
) -> dict[str, str]:
    """What the exporter's container sees, with `/` at `root`: every mounted volume written
    out (ConfigMaps from `objects`, Secrets from `secrets`), and its environment, with
    secretKeyRefs and envFrom Secrets resolved and the chart's paths moved under `root`."""

    def moved(text: str) -> str:
        return text.replace(POD_DIR, f"{root}{POD_DIR}")

    def secret_files(source: dict[str, Any], name: str) -> dict[str, str]:
        data = secrets[name]
        items = source.get("items")
        return {i["path"]: data[i["key"]] for i in items} if items else dict(data)

    c = container(objects)
    config_maps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    volumes = {
        v["name"]: v
        for v in one(objects, "Deployment")["spec"]["template"]["spec"].get("volumes", [])
    }
    for mount in c.get("volumeMounts", []):
        assert mount.get("readOnly") is True, mount
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            files = dict(config_maps[volume["configMap"]["name"]])
        elif "secret" in volume:
            files = secret_files(volume["secret"], volume["secret"]["secretName"])
        else:
            files = {}
            for source in volume["projected"]["sources"]:
                part = secret_files(source["secret"], source["secret"]["name"])
                assert not set(part) & set(files), "projected sources collide"
                files |= part
        directory = root / mount["mountPath"].lstrip("/")
        directory.mkdir(parents=True)
        for name, text in files.items():
            (directory / name).write_text(moved(text))
    environment: dict[str, str] = {}
    for source in c.get("envFrom", []):  # `env` wins over `envFrom`, as in Kubernetes
        environment |= secrets[source["secretRef"]["name"]]
    for name, value in env_of(objects).items():
        if isinstance(value, dict):
            ref = value["secretKeyRef"]
            if ref["key"] in secrets.get(ref["name"], {}):
                environment[name] = secrets[ref["name"]][ref["key"]]
            else:
                assert ref.get("optional"), f"{name}: missing key {ref['key']} is not optional"
        else:
            environment[name] = moved(value)
    return environment


def exporter_environment(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> None:
    for name in list(os.environ):
        if name.startswith(("MODELARTS_EXPORTER_", "HUAWEICLOUD_SDK_")):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)


def loaded_targets(
    values: dict[str, Any],
    secrets: dict[str, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """The targets the exporter makes of the rendered pod: its settings by target name."""
    from exporter.config.settings import load_settings
    from exporter.config.targets_file import load_config

    exporter_environment(monkeypatch, pod_filesystem(render(values), secrets, tmp_path))
    settings = load_settings({})
    assert settings.config_file, "no targets file"
    return load_config(settings.config_file, settings)


def targets_config_map(objects: list[dict[str, Any]]) -> dict[str, Any]:
    config_map = one(objects, "ConfigMap")
    assert config_map["metadata"]["name"] == f"{FULLNAME}-targets"
    assert set(config_map["data"]) == {"targets.yml"}
    return dict(config_map)


def test_targets_become_a_mounted_targets_file() -> None:
    objects = render(TARGET_OPTIONS)
    assert kinds(objects) == [
        "ConfigMap", "Deployment", "Service", "ServiceAccount", "ServiceMonitor"
    ]  # fmt: skip
    text = targets_config_map(objects)["data"]["targets.yml"]
    assert yaml.safe_load(text) == {"targets": TARGET_OPTIONS["targets"]}
    assert re.search(r"^  - name: training$", text, flags=re.MULTILINE), "name first"
    env = env_of(objects)
    assert env["MODELARTS_EXPORTER_CONFIG_FILE"] == "/etc/modelarts-exporter/targets/targets.yml"
    assert not {"HUAWEICLOUD_SDK_PROJECT_ID", "HUAWEICLOUD_SDK_REGION"} & set(env)
    assert env["MODELARTS_EXPORTER_CACHE_TTL"] == "45"  # the targets' default
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "targets", "configMap": {"name": f"{FULLNAME}-targets"}},
        {
            "name": "target-secret-0",
            "secret": {"secretName": "research-keys", "defaultMode": 0o440},
        },
    ]
    assert container(objects)["volumeMounts"] == [
        {"name": "targets", "mountPath": "/etc/modelarts-exporter/targets", "readOnly": True},
        {"name": "target-secret-0", "mountPath": RESEARCH_KEYS, "readOnly": True},
    ]
    assert container(objects)["envFrom"] == [{"secretRef": {"name": "inference-keys"}}]


def test_targets_file_quotes_what_yaml_would_take_for_another_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["true", "0123", "1.50", "null", "on"]
    values = {
        "auth": {"mode": "ecs"},
        "targets": [
            {"name": n, "project_id": f"00{i}", "region": "cn-north-4"} for i, n in enumerate(names)
        ],
    }
    doc = yaml.safe_load(targets_config_map(render(values))["data"]["targets.yml"])
    assert doc == {"targets": values["targets"]}
    targets = loaded_targets(values, {}, tmp_path, monkeypatch)
    assert [(name, s.project_id) for name, s in targets.items()] == [
        (n, f"00{i}") for i, n in enumerate(names)
    ]


def test_exporter_loads_the_rendered_targets_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    targets = loaded_targets(TARGET_OPTIONS, TARGET_SECRETS, tmp_path, monkeypatch)
    assert list(targets) == ["training", "research", "inference.shanghai"]
    training, research, inference = targets.values()

    def secret(value: Any) -> str:
        return str(value.get_secret_value())

    # No auth of its own: the release's credentials and settings.
    assert training.project_id == "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert (training.region, training.api, training.cache_ttl) == ("cn-north-4", "demanager", 45)
    assert training.modelarts_endpoint == "https://modelarts.cn-north-4.myhuaweicloud.com"
    assert (secret(training.ak), secret(training.sk)) == ("AK-release", "SK-release")
    # Files of a mounted Secret, and its own region, API and cache TTL.
    assert (research.region, research.api, research.cache_ttl) == ("cn-southwest-2", "both", 60)
    assert research.modelarts_endpoint == "https://modelarts.cn-southwest-2.myhuaweicloud.com"
    assert (secret(research.ak), secret(research.sk)) == ("AK-research", "SK-research")
    # Environment variables of an envFrom Secret.
    assert (secret(inference.ak), secret(inference.sk)) == ("AK-inference", "SK-inference")
    assert inference.effective_auth_mode == "aksk" and inference.region == "cn-east-3"


def test_a_reference_the_pod_cannot_resolve_is_reported_by_the_exporter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chart cannot see inside an envFrom Secret; the exporter names what is missing."""
    from exporter.config.targets_file import ConfigError

    secrets = TARGET_SECRETS | {"inference-keys": {"AK": "a", "SK": "s"}}
    with pytest.raises(ConfigError) as caught:
        loaded_targets(TARGET_OPTIONS, secrets, tmp_path, monkeypatch)
    assert caught.value.problems == [
        "targets[2].auth.ak: environment variable INFERENCE_AK is not set"
    ]


def test_changed_targets_restart_the_pods() -> None:
    def checksum(values: dict[str, Any]) -> str:
        pod = one(render(values), "Deployment")["spec"]["template"]
        return str(pod["metadata"]["annotations"]["checksum/config"])

    changed = copy.deepcopy(TARGET_OPTIONS)
    changed["targets"][0]["cache_ttl"] = 90
    assert checksum(TARGET_OPTIONS) == checksum(copy.deepcopy(TARGET_OPTIONS))
    assert checksum(TARGET_OPTIONS) != checksum(changed)
    annotations = one(render(), "Deployment")["spec"]["template"]["metadata"]
    assert "annotations" not in annotations


def test_schema_of_a_target_is_the_exporters_targets_file() -> None:
    """The same keys as exporter/config.py's models, so a typo fails at install time."""
    from typing import get_args

    from exporter.config.targets_file import NAME_PATTERN, AuthConfig, SecretRef, TargetConfig

    schema = json.loads((CHART / "values.schema.json").read_text())
    target = schema["definitions"]["target"]
    fields = TargetConfig.model_fields
    assert set(target["properties"]) == set(fields)
    assert set(target["required"]) == {n for n, f in fields.items() if f.is_required()}
    assert target["properties"]["name"]["pattern"] == NAME_PATTERN
    assert target["properties"]["api"]["enum"] == list(get_args(fields["api"].annotation))
    auth = target["properties"]["auth"]["properties"]
    assert set(auth) == set(AuthConfig.model_fields)
    assert auth["mode"]["enum"] == list(get_args(AuthConfig.model_fields["mode"].annotation))
    # Secrets by reference only: the chart never writes a secret into a ConfigMap.
    assert set(schema["definitions"]["secretRef"]["properties"]) == (
        set(SecretRef.model_fields) - {"value"}
    )


def test_notes_list_the_targets() -> None:
    text = notes(TARGET_OPTIONS)
    assert f"3 target(s) of its targets file (ConfigMap {FULLNAME}-targets)" in text
    assert "training: project 0a1b2c3d4e5f60718293a4b5c6d7e8f9 in region cn-north-4" in text
    assert "research: project 9f8e7d6c5b4a39281706f5e4d3c2b1a0 in region cn-southwest-2" in text
    assert "/probe?target=training" in text
    assert "WARNING" not in text
    own_credentials = merged(TARGET_OPTIONS, {"auth": {"mode": "auto", "existingSecret": ""}})
    own_credentials["targets"] = TARGET_OPTIONS["targets"][1:]
    assert "WARNING" not in notes(own_credentials)
    assert "targets without an auth of their own" in notes(
        merged(TARGET_OPTIONS, {"auth": {"mode": "auto", "existingSecret": ""}})
    )


def _targets(*targets: dict[str, Any]) -> list[dict[str, Any]]:
    return list(targets)


def _target(name: str, project_id: str) -> dict[str, Any]:
    return {"name": name, "project_id": project_id, "region": "cn-north-4"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"config": {"projectId": "p"}},
            "config.projectId is a setting of one project; with targets, set project_id in each",
        ),
        ({"config": {"region": "cn-north-4"}}, "with targets, set region in each target"),
        ({"config": {"endpoint": "https://m.example.com"}}, "set endpoint in each target"),
        ({"config": {"api": "both"}}, "set api in each target"),
        ({"config": {"showSelf": False}}, "set show_self in each target"),
        ({"config": {"workspaceId": "0"}}, "set workspace_id in each target"),
        ({"config": {"demo": True}}, "config.demo and targets are exclusive"),
        (
            {"targets": _targets(_target("a", "1"), _target("a", "2"))},
            "targets[1]: the name a is used twice",
        ),
        (
            {"targets": _targets(_target("a", "1"), _target("b", "1"))},
            "targets[1] (b): project_id 1 is used twice",
        ),
        (
            {"targets": _targets(_target("a", "1"), {"name": "b", "project_id": "2"})},
            "targets[1] (b) has no region: set its region (or endpoint)",
        ),
        (
            {"targetSecrets": [{"name": "research-keys"}, {"name": "research-keys"}]},
            "targetSecrets: research-keys is listed twice as files",
        ),
        (
            {"targetSecrets": [{"name": "research-keys", "as": "env"}]},
            f"targets[1] (research).auth.ak: {RESEARCH_KEYS}/accessKey is in no Secret of "
            "targetSecrets: add {name: research-keys}",
        ),
    ],
)
def test_unworkable_targets_fail_the_render(values: dict[str, Any], message: str) -> None:
    assert message in render_error(merged(TARGET_OPTIONS, values))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"targetSecrets": [{"name": "s"}]}, "targetSecrets is set but targets is empty"),
        (
            {"serviceMonitor": {"enabled": True, "probeTargets": True}},
            "serviceMonitor.probeTargets needs targets",
        ),
    ],
)
def test_target_options_without_targets_fail_the_render(
    values: dict[str, Any], message: str
) -> None:
    assert message in render_error(values)


# -- a locked-down endpoint: TLS and basic auth -------------------------------------------

ONE_PROJECT = {
    "config": {"region": "cn-north-4", "projectId": "p1"},
    "auth": {"mode": "aksk", "existingSecret": "modelarts-credentials"},
}
WEB_CONFIG_FILE = "/etc/modelarts-exporter/web/web-config.yml"


def test_web_config_secret_is_mounted_with_the_tls_secret_beside_it() -> None:
    objects = render(merged(ONE_PROJECT, WEB_OPTIONS))
    assert env_of(objects)["MODELARTS_EXPORTER_WEB_CONFIG_FILE"] == WEB_CONFIG_FILE
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {
            "name": "web-config",
            "projected": {
                "defaultMode": 0o440,
                "sources": [
                    {"secret": {"name": "exporter-web"}},
                    {"secret": {"name": "exporter-tls"}},
                ],
            },
        }
    ]
    assert container(objects)["volumeMounts"] == [
        {"name": "web-config", "mountPath": "/etc/modelarts-exporter/web", "readOnly": True}
    ]
    alone = merged(ONE_PROJECT, {"webConfig": {"existingSecret": "w", "key": "web.yaml"}})
    objects = render(alone)
    assert env_of(objects)["MODELARTS_EXPORTER_WEB_CONFIG_FILE"] == (
        "/etc/modelarts-exporter/web/web.yaml"
    )
    volume = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"][0]
    assert volume["projected"]["sources"] == [{"secret": {"name": "w"}}]


def test_tls_switches_the_probes_and_the_scrape_to_https() -> None:
    objects = render(merged(ONE_PROJECT, WEB_OPTIONS))
    c = container(objects)
    assert c["livenessProbe"]["httpGet"] == {
        "path": "/-/healthy",
        "port": "metrics",
        "scheme": "HTTPS",
    }
    assert c["readinessProbe"]["httpGet"] == {
        "path": "/-/ready",
        "port": "metrics",
        "scheme": "HTTPS",
    }
    assert c["livenessProbe"]["periodSeconds"] == 10  # the timing values still apply
    (endpoint,) = one(objects, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["scheme"] == "https" and endpoint["path"] == "/metrics"
    assert endpoint["tlsConfig"] == WEB_OPTIONS["serviceMonitor"]["tlsConfig"]
    assert endpoint["basicAuth"] == WEB_OPTIONS["serviceMonitor"]["basicAuth"]
    assert "serviceMonitor.tlsConfig" not in notes(merged(ONE_PROJECT, WEB_OPTIONS))


def test_basic_auth_alone_keeps_plain_http_probes() -> None:
    """/-/healthy and /-/ready answer without basic auth, so the probes stay plain GETs."""
    values = merged(
        ONE_PROJECT,
        {"webConfig": {"existingSecret": "w"}},
        {
            "serviceMonitor": {
                "enabled": True,
                "basicAuth": WEB_OPTIONS["serviceMonitor"]["basicAuth"],
            }
        },
    )
    objects = render(values)
    assert container(objects)["readinessProbe"]["httpGet"] == {
        "path": "/-/ready",
        "port": "metrics",
    }
    (endpoint,) = one(objects, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["scheme"] == "http" and "tlsConfig" not in endpoint
    assert endpoint["basicAuth"] == WEB_OPTIONS["serviceMonitor"]["basicAuth"]


def test_required_client_certificates_make_the_probes_tcp_checks() -> None:
    c = container(render(MUTUAL_TLS))
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["tcpSocket"] == {"port": "metrics"}
        assert "httpGet" not in c[probe]


def test_https_without_a_tls_config_is_noted() -> None:
    values = merged(ONE_PROJECT, {"webConfig": {"existingSecret": "w", "tls": True}})
    values["serviceMonitor"] = {"enabled": True}
    assert "no serviceMonitor.tlsConfig" in notes(values)
    assert "curl -sk -u USER https://127.0.0.1" in notes(values)


def test_exporter_reads_the_mounted_web_config(tmp_path: Path) -> None:
    """The layout works: relative paths in the file find the projected TLS Secret's files."""
    import ssl

    import bcrypt
    from certs import issue, make_ca

    from exporter.http.webconfig import load_web_config, ssl_context

    pki = tmp_path / "pki"
    pki.mkdir()
    ca = make_ca(pki)
    server = issue(ca, pki, "server")
    password_hash = bcrypt.hashpw(b"scrape", bcrypt.gensalt(rounds=4)).decode()
    web_config = (
        "tls_server_config:\n"
        "  cert_file: tls.crt\n"
        "  key_file: tls.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
        "  client_ca_file: ca.crt\n"
        f"basic_auth_users:\n  prometheus: '{password_hash}'\n"
    )
    secrets = {
        "modelarts-credentials": TARGET_SECRETS["modelarts-credentials"],
        "exporter-web": {"web-config.yml": web_config},
        "exporter-tls": {
            "tls.crt": server.cert.read_text(),
            "tls.key": server.key.read_text(),
            "ca.crt": ca.cert.read_text(),
        },
    }
    root = tmp_path / "pod"
    values = merged(ONE_PROJECT, WEB_OPTIONS, {"webConfig": {"requireClientCert": True}})
    environment = pod_filesystem(render(values), secrets, root)
    config = load_web_config(environment["MODELARTS_EXPORTER_WEB_CONFIG_FILE"])
    tls = config.tls_server_config
    assert tls is not None
    assert tls.cert_file == root / "etc/modelarts-exporter/web/tls.crt"
    assert set(config.basic_auth_users) == {"prometheus"}
    context = ssl_context(config)
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"webConfig": {"tls": True}}, "webConfig.tls needs webConfig.existingSecret"),
        ({"webConfig": {"tlsSecret": "t"}}, "webConfig.tlsSecret needs webConfig.existingSecret"),
        (
            {"webConfig": {"existingSecret": "w", "requireClientCert": True}},
            "webConfig.requireClientCert needs webConfig.tls",
        ),
        (
            {"serviceMonitor": {"enabled": True, "tlsConfig": {"insecureSkipVerify": True}}},
            "serviceMonitor.tlsConfig needs webConfig.tls",
        ),
        (
            {
                "serviceMonitor": {
                    "enabled": True,
                    "basicAuth": WEB_OPTIONS["serviceMonitor"]["basicAuth"],
                }
            },
            "serviceMonitor.basicAuth needs webConfig.existingSecret",
        ),
        (
            {
                "webConfig": {"existingSecret": "w"},
                "serviceMonitor": {
                    "enabled": True,
                    "basicAuth": {"username": {"name": "s", "key": "u"}},
                },
            },
            "serviceMonitor.basicAuth needs both username and password",
        ),
    ],
)
def test_unworkable_web_settings_fail_the_render(values: dict[str, Any], message: str) -> None:
    assert message in render_error(merged(ONE_PROJECT, values))


# -- values schema -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"replicas": 2}, "replicas"),
        ({"config": {"projectID": "p"}}, "projectID"),
        ({"config": {"cacheTTL": "30s"}}, "cacheTTL"),
        ({"config": {"cacheTTL": 0}}, "cacheTTL"),
        ({"config": {"pageSize": 1.5}}, "pageSize"),
        ({"config": {"logLevel": "verbose"}}, "logLevel"),
        ({"config": {"logFormat": "text"}}, "logFormat"),
        ({"config": {"endpoint": "modelarts.example.com"}}, "endpoint"),
        ({"config": {"demo": "yes"}}, "demo"),
        ({"replicaCount": "2"}, "replicaCount"),
        ({"image": {"pullPolicy": "always"}}, "pullPolicy"),
        ({"image": {"registry": "r"}}, "registry"),
        ({"auth": {"mode": "password"}}, "mode"),
        ({"auth": {"secretsAs": "volume"}}, "secretsAs"),
        ({"auth": {"values": {"accesKey": "a"}}}, "accesKey"),
        ({"auth": {"secretKeys": {"accessKey": "a/b"}}}, "accessKey"),
        ({"service": {"port": 70000}}, "port"),
        ({"serviceMonitor": {"interval": "30 seconds"}}, "interval"),
        ({"serviceMonitor": {"enable": True}}, "enable"),
        ({"prometheusRule": {"extraGroups": [{"name": "no-rules"}]}}, "rules"),
        ({"dashboards": {"labelValue": 1}}, "labelValue"),
        ({"livenessProbe": {"httpGet": {"path": "/"}}}, "httpGet"),
        ({"podAnnotations": {"a": 1}}, "podAnnotations"),
        ({"extraArgs": "--demo"}, "extraArgs"),
        ({"extraEnv": [{"value": "no name"}]}, "extraEnv"),
        ({"config": {"api": "v2"}}, "api"),
        ({"targets": [{"name": "a", "projectId": "p"}]}, "projectId"),
        ({"targets": [{"name": "a"}]}, "project_id"),
        ({"targets": [{"name": "-a", "project_id": "p"}]}, "name"),
        ({"targets": [{"name": "a", "project_id": "p", "api": "v2"}]}, "api"),
        ({"targets": [{"name": "a", "project_id": "p", "cache_ttl": 0}]}, "cache_ttl"),
        ({"targets": [{"name": "a", "project_id": "p", "auth": {"ak": "AKINLINE"}}]}, "ak"),
        (
            {
                "targets": [
                    {"name": "a", "project_id": "p", "auth": {"sk": {"env": "A", "file": "/b"}}}
                ]
            },
            "sk",
        ),
        (
            {"targets": [{"name": "a", "project_id": "p", "auth": {"sk": {"file": "sk.txt"}}}]},
            "file",
        ),
        ({"targets": [{"name": "a", "project_id": "p", "auth": {"sk": {"value": "s"}}}]}, "value"),
        (
            {"targets": [{"name": "a", "project_id": "p", "auth": {"access_key": {"env": "A"}}}]},
            "access_key",
        ),
        ({"targetSecrets": ["research-keys"]}, "targetSecrets"),
        ({"targetSecrets": [{"name": "k", "as": "volume"}]}, "as"),
        ({"webConfig": {"existingsecret": "w"}}, "existingsecret"),
        ({"webConfig": {"tls": "yes"}}, "tls"),
        ({"webConfig": {"key": "web/config.yml"}}, "key"),
        ({"serviceMonitor": {"probeTarget": True}}, "probeTarget"),
        ({"serviceMonitor": {"tlsConfig": {"insecureSkipVerfy": True}}}, "insecureSkipVerfy"),
        ({"serviceMonitor": {"tlsConfig": {"ca": {"secret": {"name": "c"}}}}}, "key"),
        ({"serviceMonitor": {"basicAuth": {"user": {"name": "s", "key": "u"}}}}, "user"),
    ],
)
def test_schema_rejects_bad_values(values: dict[str, Any], where: str) -> None:
    error = render_error(values)
    assert "schema" in error or "want" in error, error
    assert where in error, error


def test_every_example_in_values_yaml_passes_the_schema() -> None:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(chart_values())
        chart.validate_schema(ALL_OPTIONS)
        chart.validate_schema(MULTI_OPTIONS)
        chart.validate_schema(MUTUAL_TLS)


# -- ServiceMonitor ----------------------------------------------------------------------


def test_service_monitor() -> None:
    objects = render(WORKLOAD_OPTIONS)
    monitor, service = one(objects, "ServiceMonitor"), one(objects, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    assert set(spec) == {"jobLabel", "selector", "namespaceSelector", "endpoints"}
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    # job="modelarts-exporter" whatever the release is called
    assert service["metadata"]["labels"][spec["jobLabel"]] == "modelarts-exporter"
    assert spec["endpoints"] == [
        {
            "port": service["spec"]["ports"][0]["name"],
            "path": "/metrics",
            "scheme": "http",
            "interval": "1m",
            "scrapeTimeout": "15s",
            "honorLabels": False,
            "relabelings": WORKLOAD_OPTIONS["serviceMonitor"]["relabelings"],
            "metricRelabelings": WORKLOAD_OPTIONS["serviceMonitor"]["metricRelabelings"],
        }
    ]


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h)", duration))


def test_default_scrape_timeout_fits_the_interval_and_the_refresh_budget() -> None:
    monitor = chart_values()["serviceMonitor"]
    from exporter.config.settings import Settings

    budget = Settings.model_fields["refresh_budget"].default
    assert budget < _seconds(monitor["scrapeTimeout"]) <= _seconds(monitor["interval"])


def test_service_monitor_in_another_namespace_still_finds_the_service() -> None:
    objects = render(
        {"serviceMonitor": {"enabled": True, "namespace": "prometheus", "interval": ""}}
    )
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["namespace"] == "prometheus"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert "interval" not in monitor["spec"]["endpoints"][0]


TARGET_LABEL = {"sourceLabels": ["__param_target"], "targetLabel": "target", "action": "replace"}


def test_probe_service_monitor_scrapes_each_target_on_its_own() -> None:
    relabelings = [{"targetLabel": "cluster", "replacement": "prod-1"}]
    metric_relabelings = [{"sourceLabels": ["__name__"], "regex": "go_.*", "action": "drop"}]
    values = merged(
        TARGET_OPTIONS,
        {
            "serviceMonitor": {
                "interval": "1m",
                "relabelings": relabelings,
                "metricRelabelings": metric_relabelings,
            }
        },
    )
    monitor = one(render(values), "ServiceMonitor")
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"  # one job for all
    assert monitor["spec"]["endpoints"] == [
        {
            "port": "metrics",
            "path": "/probe",
            "params": {"target": [target["name"]]},
            "scheme": "http",
            "interval": "1m",
            "scrapeTimeout": "10s",
            "honorLabels": False,
            # The target label first, so the user's relabelings can use it.
            "relabelings": [TARGET_LABEL, *relabelings],
            "metricRelabelings": metric_relabelings,
        }
        for target in TARGET_OPTIONS["targets"]
    ]


def test_targets_without_probe_targets_are_scraped_together_at_metrics() -> None:
    values = merged(TARGET_OPTIONS, {"serviceMonitor": {"probeTargets": False}})
    (endpoint,) = one(render(values), "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert "params" not in endpoint and "relabelings" not in endpoint


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def scrape_config(job: str, endpoint: dict[str, Any], address: str) -> dict[str, Any]:
    """The Prometheus scrape config the Prometheus Operator makes of an endpoint: its own
    relabelling first (the job from the Service's label), then the endpoint's."""
    assert set(endpoint) <= {
        "port", "path", "params", "scheme", "interval", "scrapeTimeout", "honorLabels",
        "relabelings",
    }, "a field this translation does not know"  # fmt: skip
    return {
        "job_name": job,
        "metrics_path": endpoint["path"],
        "params": endpoint.get("params", {}),
        "scheme": endpoint["scheme"],
        "honor_labels": endpoint["honorLabels"],
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "static_configs": [{"targets": [address]}],
        "relabel_configs": [{"target_label": "job", "replacement": "modelarts-exporter"}]
        + [{_snake(k): v for k, v in r.items()} for r in endpoint.get("relabelings", [])],
    }


def test_prometheus_scrapes_the_rendered_probe_endpoints(tmp_path: Path) -> None:
    """The rendered targets file runs a real exporter over two simulated projects, and a
    real Prometheus scrapes it as the rendered ServiceMonitor says: each target once, in
    one job, told apart by the target label."""
    import time
    import urllib.parse
    import urllib.request

    from exporter_process import exporter_process
    from helpers_prom import prometheus_server

    from exporter.simulator import DEMO_AK, DEMO_SK, Fleet, Simulator

    projects = {"alpha": "a" * 32, "beta": "b" * 32}
    sizes = {"alpha": 4, "beta": 7}
    with (
        Simulator(Fleet(size=sizes["alpha"], seed=1), project_id=projects["alpha"]) as alpha,
        Simulator(Fleet(size=sizes["beta"], seed=2), project_id=projects["beta"]) as beta,
    ):
        values = {
            "auth": {"mode": "aksk", "existingSecret": "simulator-keys"},
            "targets": [
                {"name": name, "project_id": projects[name], "endpoint": sim.url}
                for name, sim in (("alpha", alpha), ("beta", beta))
            ],
            "serviceMonitor": {"enabled": True, "probeTargets": True},
        }
        objects = render(values)
        targets_file = tmp_path / "targets.yml"
        targets_file.write_text(targets_config_map(objects)["data"]["targets.yml"])
        endpoints = one(objects, "ServiceMonitor")["spec"]["endpoints"]
        env = {"HUAWEICLOUD_SDK_AK": DEMO_AK, "HUAWEICLOUD_SDK_SK": DEMO_SK}
        with exporter_process("--config.file", str(targets_file), env=env) as exporter:
            address = exporter.url.removeprefix("http://")
            config = {
                "scrape_configs": [
                    scrape_config(f"serviceMonitor/{NAMESPACE}/{FULLNAME}/{i}", e, address)
                    for i, e in enumerate(endpoints)
                ]
            }
            with prometheus_server(config, tmp_path) as server:

                def query(expr: str) -> dict[tuple[str, ...], float]:
                    """(target, project_id, instance) of each series -> its value."""
                    url = f"{server.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
                    with urllib.request.urlopen(url, timeout=5) as response:
                        result = json.load(response)["data"]["result"]
                    keys = ("target", "project_id", "instance")
                    return {
                        tuple(r["metric"].get(k, "") for k in keys): float(r["value"][1])
                        for r in result
                    }

                deadline = time.monotonic() + 60
                notebooks: dict[tuple[str, ...], float] = {}
                while len(notebooks) < 2 and time.monotonic() < deadline:
                    assert server.process.poll() is None, server.log.read_text()
                    time.sleep(0.5)
                    with contextlib.suppress(OSError):  # not listening yet
                        notebooks = query(
                            "count by (target, project_id) (modelarts_notebook_instance_info)"
                        )
                up = query('up{job="modelarts-exporter"}')
                refreshed = query('modelarts_up{job="modelarts-exporter"}')
                log = server.log.read_text()
    assert notebooks == {(name, projects[name], ""): sizes[name] for name in projects}, log
    assert up == {(name, "", address): 1.0 for name in projects}, "one job, one up per target"
    assert refreshed == {(name, projects[name], address): 1.0 for name in projects}


# -- PrometheusRule ----------------------------------------------------------------------


def rule_groups(values: dict[str, Any]) -> list[dict[str, Any]]:
    rule = one(render(values), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule["spec"]) == {"groups"}
    return list(rule["spec"]["groups"])


def test_prometheus_rule_carries_the_project_rules() -> None:
    expected = source_groups() + RULE_OPTIONS["prometheusRule"]["extraGroups"]
    assert rule_groups(RULE_OPTIONS) == expected


def test_prometheus_rule_passes_promtool(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups(RULE_OPTIONS)}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in rule_groups(RULE_OPTIONS))
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_prometheus_rule_kinds_can_be_switched_off() -> None:
    sources = [rule for group in source_groups() for rule in group["rules"]]
    assert any("alert" in r for r in sources) and any("record" in r for r in sources)
    only_alerts = rule_groups({"prometheusRule": {"enabled": True, "recording": False}})
    only_records = rule_groups({"prometheusRule": {"enabled": True, "alerts": False}})
    alerts = [r for g in only_alerts for r in g["rules"]]
    records = [r for g in only_records for r in g["rules"]]
    assert alerts == [r for r in sources if "alert" in r]
    assert records == [r for r in sources if "record" in r]
    assert all(g["rules"] for g in only_alerts + only_records), "empty group"
    nothing = {"prometheusRule": {"enabled": True, "alerts": False, "recording": False}}
    assert "no rule to ship" in render_error(nothing)


# -- dashboards --------------------------------------------------------------------------


def test_dashboards_are_config_maps_for_the_grafana_sidecar() -> None:
    sources = dashboard_sources()
    maps = [o for o in render(DASHBOARD_OPTIONS) if o["kind"] == "ConfigMap"]
    assert len(maps) == len(sources)
    shipped = {key: value for m in maps for key, value in m["data"].items()}
    assert {key: json.loads(value) for key, value in shipped.items()} == {
        path.name: json.loads(path.read_text()) for path in sources
    }
    for m in maps:
        assert m["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert m["metadata"]["annotations"] == {"grafana_folder": "ModelArts"}
        assert len(m["data"]) == 1


def test_dashboards_load_without_an_import_step() -> None:
    """The sidecar provisions files as they are: no `__inputs` to fill in, a fixed uid."""
    uids = []
    for path in dashboard_sources():
        dashboard = json.loads(path.read_text())
        assert "__inputs" not in dashboard, f"{path.name} needs Grafana's import dialog"
        assert "${DS_" not in path.read_text(), f"{path.name} refers to an import input"
        uids.append(dashboard.get("uid"))
    assert all(uids) and len(set(uids)) == len(uids), uids


def test_dashboard_label_is_configurable() -> None:
    dashboard_sources()
    values = {
        "dashboards": {
            "enabled": True,
            "label": "dashboards.example.com/grafana",
            "labelValue": "modelarts",
            "namespace": "grafana",
        }
    }
    for m in (o for o in render(values) if o["kind"] == "ConfigMap"):
        assert m["metadata"]["labels"]["dashboards.example.com/grafana"] == "modelarts"
        assert "grafana_dashboard" not in m["metadata"]["labels"]
        assert m["metadata"]["namespace"] == "grafana"


# -- chart copies of the rules and dashboards --------------------------------------------


def test_chart_copies_equal_the_sources() -> None:
    rule_sources()
    dashboard_sources()
    result = run_script("sync-chart-assets.py", "--check")
    assert result.returncode == 0, (
        "the chart's copies of prometheus/ and grafana/dashboards/ are stale; "
        "run scripts/sync-chart-assets.py\n" + result.stdout + result.stderr
    )


def test_sync_script_copies_rule_files_and_dashboards_only(tmp_path: Path) -> None:
    (tmp_path / "prometheus" / "tests").mkdir(parents=True)
    (tmp_path / "grafana" / "dashboards").mkdir(parents=True)
    files = tmp_path / "helm" / "modelarts-exporter" / "files"
    (tmp_path / "prometheus" / "alerts.yml").write_text(
        "# a comment\ngroups:\n  - name: a\n    rules: []\n"
    )
    (tmp_path / "prometheus" / "alerts_test.yml").write_text(
        "rule_files: [alerts.yml]\ntests: []\n"
    )
    (tmp_path / "prometheus" / "tests" / "t.yml").write_text("groups: []\n")
    (tmp_path / "grafana" / "dashboards" / "fleet.json").write_text('{"title": "Fleet"}\n')
    (files / "prometheus").mkdir(parents=True)
    (files / "prometheus" / "gone.yml").write_text("groups: []\n")

    root = ["--root", str(tmp_path)]
    assert run_script("sync-chart-assets.py", "--check", *root).returncode == 1
    assert run_script("sync-chart-assets.py", *root).returncode == 0
    copied = sorted(str(p.relative_to(files)) for p in files.rglob("*") if p.is_file())
    assert copied == ["grafana/dashboards/fleet.json", "prometheus/alerts.yml"]
    assert (files / "prometheus" / "alerts.yml").read_bytes() == (
        tmp_path / "prometheus" / "alerts.yml"
    ).read_bytes()
    assert run_script("sync-chart-assets.py", "--check", *root).returncode == 0

    (tmp_path / "grafana" / "dashboards" / "fleet.json").write_text('{"title": "Fleet v2"}\n')
    stale = run_script("sync-chart-assets.py", "--check", *root)
    assert stale.returncode == 1 and "fleet.json" in stale.stdout


# -- NOTES, examples, versions, docs -----------------------------------------------------


def test_notes_tell_how_to_reach_the_metrics() -> None:
    text = notes(
        {"config": {"projectId": "p", "region": "cn-north-4"}, "auth": {"existingSecret": "c"}}
    )
    assert f"kubectl --namespace {NAMESPACE} port-forward service/{FULLNAME} {PORT}:{PORT}" in text
    assert f"http://127.0.0.1:{PORT}/metrics" in text
    assert "WARNING" not in text


def test_notes_warn_about_missing_settings() -> None:
    text = notes()
    assert "config.projectId is not set" in text
    assert "neither config.region nor config.endpoint" in text
    assert "no credentials are configured" in text
    assert "WARNING" not in notes({"config": {"demo": True}})


def example_values() -> Iterator[tuple[str, dict[str, Any]]]:
    """Each example install: a file, or a project file over several-projects/common.yaml."""
    for path in sorted(EXAMPLES.glob("*.yaml")):
        yield path.name, yaml.safe_load(path.read_text())
    several = EXAMPLES / "several-projects"
    common = yaml.safe_load((several / "common.yaml").read_text())
    for path in sorted(several.glob("project-*.yaml")):
        yield f"several-projects/{path.name}", merged(common, yaml.safe_load(path.read_text()))


@pytest.mark.parametrize(
    ("name", "values"), [pytest.param(name, v, id=name) for name, v in example_values()]
)
def test_examples_render_and_validate(name: str, values: dict[str, Any]) -> None:
    objects = render(values)
    for obj in objects:
        if obj["kind"] in CORE_KINDS:
            kubernetes_validate.validate(obj, KUBE_VERSIONS[0], strict=True)
    assert "WARNING" not in notes(values), name


def test_several_projects_ship_rules_and_dashboards_once() -> None:
    projects = [values for name, values in example_values() if name.startswith("several-projects/")]
    assert len(projects) >= 2
    owners = [v for v in projects if v.get("prometheusRule", {}).get("enabled")]
    assert len(owners) == 1, "exactly one release ships the PrometheusRule"
    assert [v for v in projects if v.get("dashboards", {}).get("enabled")] == owners
    assert len({v["config"]["projectId"] for v in projects}) == len(projects)


def docs_yaml_blocks() -> list[list[dict[str, Any]]]:
    text = (ROOT / "docs" / "helm.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    return [[doc for doc in yaml.safe_load_all(block) if doc] for block in blocks]


def test_values_in_the_docs_are_valid_and_match_the_examples() -> None:
    blocks = docs_yaml_blocks()
    assert blocks
    with helm.Chart.load(CHART) as chart:
        for block in blocks:
            for values in block:
                chart.validate_schema(values)
    examples = dict(example_values())
    several = EXAMPLES / "several-projects"
    files = [
        yaml.safe_load((several / f).read_text())
        for f in ("common.yaml", "project-training.yaml", "project-research.yaml")
    ]
    assert [examples["kube-prometheus-stack.yaml"]] in blocks
    assert [examples["probe-servicemonitor.yaml"]] in blocks
    assert [examples["web-config.yaml"]] in blocks
    assert files in blocks


def chart_yaml() -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / "Chart.yaml").read_text()))


def chart_values() -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / "values.yaml").read_text()))


def test_packaged_chart_carries_the_rules_and_dashboards(tmp_path: Path) -> None:
    archive = helm.package(CHART, destination=tmp_path)
    assert Path(archive).name == f"modelarts-exporter-{chart_yaml()['version']}.tgz"
    with helm.Chart.load(archive) as chart:
        manifests = chart.render(ALL_OPTIONS, name=RELEASE, namespace=NAMESPACE)
    assert manifests == render_raw(ALL_OPTIONS)


def test_app_version_is_the_exporter_version() -> None:
    from exporter import __version__

    meta = chart_yaml()
    assert meta["apiVersion"] == "v2"
    assert meta["appVersion"] == __version__


def test_values_table_in_docs_is_up_to_date() -> None:
    result = run_script("helm-values-table.py", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_values_table_script_refuses_undocumented_keys(tmp_path: Path) -> None:
    chart = tmp_path / "helm" / "modelarts-exporter"
    shutil.copytree(CHART, chart)
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "helm.md", tmp_path / "docs" / "helm.md")
    assert run_script("helm-values-table.py", "--check", "--root", str(tmp_path)).returncode == 0

    values = chart / "values.yaml"
    values.write_text(values.read_text() + "\nsneaky: true\n")
    result = run_script("helm-values-table.py", "--check", "--root", str(tmp_path))
    assert result.returncode == 2 and "sneaky" in result.stderr

    values.write_text(
        values.read_text().replace("\nsneaky: true\n", "\n# -- Documented.\nsneaky: true\n")
    )
    result = run_script("helm-values-table.py", "--check", "--root", str(tmp_path))
    assert result.returncode == 2 and "not in values.schema.json" in result.stderr


def test_values_table_lists_every_documented_key() -> None:
    table = load_script("helm-values-table.py")
    rows = {row.key: row for row in table.rows(CHART)}
    assert rows["config.cacheTTL"].type == "number or null"
    assert rows["auth.mode"].default == '`"auto"`'
    assert "resources.requests.cpu" not in rows  # documented as a whole, under resources
    doc = (ROOT / "docs" / "helm.md").read_text()
    for key in rows:
        assert f"| `{key}` |" in doc
