"""The chart renders, lints and validates: objects, the Deployment, settings, the values schema.

Rendered by the real Helm engine; see chart.py. A missing tool fails these tests."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest

from tests.deploy.chart import (
    ALL_OPTIONS,
    CHART,
    CORE_KINDS,
    FULLNAME,
    KUBE_VERSIONS,
    MULTI_OPTIONS,
    MUTUAL_TLS,
    NAMESPACE,
    OPERATOR_KINDS,
    PORT,
    RELEASE,
    WORKLOAD_OPTIONS,
    chart_values,
    chart_yaml,
    container,
    dashboard_sources,
    env_of,
    is_test_hook,
    kinds,
    merged,
    one,
    render,
    render_error,
)

# -- lint and what renders ---------------------------------------------------------------


@pytest.mark.parametrize(
    "values", [None, ALL_OPTIONS, MULTI_OPTIONS], ids=["defaults", "all-options", "multi"]
)
def test_lint_is_clean(values: dict[str, Any] | None) -> None:
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version="v1.31.0")
    assert report["total_charts_linted"] == 1
    assert report["messages"] == [] and report["errors"] == []


def test_default_install_renders_the_core_objects_only() -> None:
    objects = render()
    assert kinds(objects) == ["Deployment", "Pod", "Service", "ServiceAccount"]
    assert [o["kind"] for o in objects if is_test_hook(o)] == ["Pod"]  # only on `helm test`


def test_all_options_render_every_kind() -> None:
    objects = render(ALL_OPTIONS)
    dashboards = len(dashboard_sources())
    assert kinds(objects) == sorted(
        ["ConfigMap"] * dashboards
        + ["Deployment", "Pod", "PrometheusRule", "Secret", "Service", "ServiceAccount"]
        + ["ServiceMonitor"]
    )


@pytest.mark.parametrize("values", [ALL_OPTIONS, MULTI_OPTIONS], ids=["all-options", "multi"])
def test_every_object_is_in_the_release_namespace_and_labelled(values: dict[str, Any]) -> None:
    objects = render(values)
    for obj in objects:
        meta = obj["metadata"]
        assert meta["namespace"] == NAMESPACE, obj["kind"]
        assert meta["name"].startswith(FULLNAME), obj["kind"]
        labels = meta["labels"]
        # The test pod must not carry the selector labels: the Service and the
        # Deployment's ReplicaSet would take it for an exporter.
        name = "modelarts-exporter-test" if is_test_hook(obj) else "modelarts-exporter"
        assert labels["app.kubernetes.io/name"] == name
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
