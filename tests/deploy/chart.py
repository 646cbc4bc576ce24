"""Shared by the chart tests: the chart, rendered by the real Helm engine (offline).

Core objects are validated against the Kubernetes OpenAPI schemas (kubernetes-validate,
strict: unknown fields fail); the Prometheus Operator objects, which have no schema there,
are checked field by field, and the PrometheusRule's groups by `promtool check rules`.
A missing tool fails these tests; it never skips them.
"""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "modelarts-exporter"
EXAMPLES = ROOT / "helm" / "examples"
RELEASE, NAMESPACE = "mx", "monitoring"
FULLNAME = "mx-modelarts-exporter"
PORT = 10200

# Oldest Kubernetes the chart promises (Chart.yaml kubeVersion is older still) and the
# newest kubernetes-validate knows.
KUBE_VERSIONS = ("1.31.0", kubernetes_validate.utils.latest_version())
CORE_KINDS = {
    "Deployment",
    "Service",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "Pod",  # the `helm test` hook
    "NetworkPolicy",
    "PodDisruptionBudget",
}
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


def is_test_hook(obj: dict[str, Any]) -> bool:
    return bool(obj["metadata"].get("annotations", {}).get("helm.sh/hook") == "test")


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


def targets_config_map(objects: list[dict[str, Any]]) -> dict[str, Any]:
    config_map = one(objects, "ConfigMap")
    assert config_map["metadata"]["name"] == f"{FULLNAME}-targets"
    assert set(config_map["data"]) == {"targets.yml"}
    return dict(config_map)


def chart_yaml() -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / "Chart.yaml").read_text()))


def chart_values() -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / "values.yaml").read_text()))
