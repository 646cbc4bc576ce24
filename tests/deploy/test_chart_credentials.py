"""The chart's credentials: every auth mode from a Secret, an existing Secret or files,
and workload identity without a Secret (a projected service-account token, pod identity).

Rendered by the real Helm engine; see chart.py. A missing tool fails these tests."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from tests.deploy.chart import (
    CHART,
    CORE_KINDS,
    EXAMPLES,
    FULLNAME,
    KUBE_VERSIONS,
    NAMESPACE,
    PORT,
    container,
    env_of,
    kinds,
    merged,
    notes,
    one,
    render,
    render_error,
)

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
ID_TOKEN_DIR = "/var/run/secrets/modelarts-exporter"
TOKEN = {"serviceAccountToken": {"enabled": True, "audience": "modelarts-exporter"}}
IDP: dict[str, Any] = {"auth": {"mode": "idp", **TOKEN, "idp": {"id": "cce-oidc"}}}
OIDC_STS: dict[str, Any] = {
    "auth": {
        "mode": "oidc-sts",
        **TOKEN,
        "oidc": {
            "providerUrn": "iam::0a1b:identity-provider:cce",
            "agencyUrn": "iam::0a1b:agency:modelarts-reader",
            "sessionName": "modelarts-exporter",
            "durationSeconds": 7200,
            "stsEndpoint": "https://sts.cn-north-4.myhuaweicloud.com",
        },
    }
}
POD_IDENTITY: dict[str, Any] = {
    "auth": {
        "mode": "pod-identity",
        **TOKEN,
        "podIdentity": {"credentialsUri": "http://169.254.170.2/v1/credentials"},
    }
}
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
        elif name.endswith("_FILE") and value.startswith(ID_TOKEN_DIR + "/"):
            environment[name] = str(files_dir / "id-token")  # the kubelet's projected token
            (files_dir / "id-token").write_text("eyJ.projected.token")
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
        (IDP, {}, "idp"),
        (merged(IDP, {"auth": {"mode": "auto"}}), {}, "idp"),
        (OIDC_STS, {}, "oidc-sts"),
        (merged(OIDC_STS, {"auth": {"mode": "auto"}}), {}, "oidc-sts"),
        (POD_IDENTITY, {}, "pod-identity"),
        (merged(POD_IDENTITY, {"auth": {"mode": "auto"}}), {}, "pod-identity"),
    ],
    ids=[
        "aksk",
        "aksk-files",
        "iam",
        "token-files",
        "auto-aksk",
        "created-token",
        "ecs",
        "idp",
        "auto-idp",
        "oidc-sts",
        "auto-oidc-sts",
        "pod-identity",
        "auto-pod-identity",
    ],
)
def test_exporter_accepts_the_rendered_environment(
    values: dict[str, Any],
    secret: dict[str, str],
    mode: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from exporter.config.command_line import load_settings

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


# -- workload identity: no Secret ----------------------------------------------------------


def id_token_volume(objects: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "id-token"]
    (mount,) = [m for m in container(objects)["volumeMounts"] if m["name"] == "id-token"]
    assert mount == {"name": "id-token", "mountPath": ID_TOKEN_DIR, "readOnly": True}
    return dict(volume)


def test_idp_federation_mounts_a_projected_token_and_no_secret() -> None:
    objects = render(IDP)
    env = env_of(objects)
    assert "Secret" not in kinds(objects)
    assert not [name for name, value in env.items() if isinstance(value, dict)]
    assert env["MODELARTS_EXPORTER_AUTH_MODE"] == "idp"
    assert env["HUAWEICLOUD_SDK_IDP_ID"] == "cce-oidc"
    assert env["HUAWEICLOUD_SDK_ID_TOKEN_FILE"] == f"{ID_TOKEN_DIR}/id-token"
    assert id_token_volume(objects) == {
        "name": "id-token",
        "projected": {
            "defaultMode": 0o440,
            "sources": [
                {
                    "serviceAccountToken": {
                        "path": "id-token",
                        "expirationSeconds": 3600,
                        "audience": "modelarts-exporter",
                    }
                }
            ],
        },
    }
    # The API token stays unmounted: the projected one is for IAM only.
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False


def test_oidc_sts_sets_the_vendors_variables() -> None:
    objects = render(OIDC_STS)
    env = env_of(objects)
    assert {k: v for k, v in env.items() if "OIDC" in k or "STS" in k} == {
        "HUAWEICLOUD_OIDC_PROVIDER_URN": "iam::0a1b:identity-provider:cce",
        "HUAWEICLOUD_OIDC_AGENCY_URN": "iam::0a1b:agency:modelarts-reader",
        "HUAWEICLOUD_OIDC_TOKEN_FILE": f"{ID_TOKEN_DIR}/id-token",
        "HUAWEICLOUD_OIDC_SESSION_NAME": "modelarts-exporter",
        "HUAWEICLOUD_OIDC_DURATION_SECONDS": "7200",
        "MODELARTS_EXPORTER_STS_ENDPOINT": "https://sts.cn-north-4.myhuaweicloud.com",
    }
    id_token_volume(objects)


def test_pod_identity_reads_the_projected_token_or_the_one_given() -> None:
    env = env_of(render(POD_IDENTITY))
    assert env["HC_CONTAINER_CREDENTIALS_FULL_URI"] == "http://169.254.170.2/v1/credentials"
    assert env["HC_CONTAINER_AUTHORIZATION_TOKEN_FILE"] == f"{ID_TOKEN_DIR}/id-token"
    given = merged(POD_IDENTITY, {"auth": {"podIdentity": {"tokenFile": "/var/run/pod/token"}}})
    assert env_of(render(given))["HC_CONTAINER_AUTHORIZATION_TOKEN_FILE"] == "/var/run/pod/token"
    # Injected by the cluster: the chart sets nothing but the mode.
    injected = env_of(render({"auth": {"mode": "pod-identity"}}))
    assert not {"HC_CONTAINER_CREDENTIALS_FULL_URI", "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE"} & set(
        injected
    )


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"mode": "idp", **TOKEN}, "auth.mode=idp needs auth.idp.id"),
        ({"idp": {"id": "x"}}, "auth.idp.id needs auth.serviceAccountToken.enabled"),
        ({"mode": "oidc-sts", **TOKEN}, "needs auth.oidc.providerUrn and auth.oidc.agencyUrn"),
        ({"oidc": {"providerUrn": "urn"}, **TOKEN}, "auth.oidc.agencyUrn"),
        (
            {"oidc": {"providerUrn": "urn", "agencyUrn": "urn"}},
            "auth.oidc needs auth.serviceAccountToken.enabled",
        ),
        ({"podIdentity": {"tokenFile": "/t"}}, "auth.podIdentity.credentialsUri"),
    ],
)
def test_unworkable_workload_identity_fails_the_render(auth: dict[str, Any], message: str) -> None:
    assert message in render_error({"config": {"region": "cn-north-4"}, "auth": auth})


@pytest.mark.parametrize(
    "auth",
    [
        {"serviceAccountToken": {"expirationSeconds": 60}},  # the kubelet's minimum is 600
        {"oidc": {"durationSeconds": 60}},
        {"podIdentity": {"credentialsUri": "169.254.170.2/v1/credentials"}},
        {"mode": "workload"},
    ],
)
def test_the_schema_refuses_wrong_workload_identity_values(auth: dict[str, Any]) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmError):
        chart.validate_schema({"auth": auth})


WORKLOAD_IDENTITY_EXAMPLE = EXAMPLES / "workload-identity.yaml"


def test_the_workload_identity_example_lints_renders_and_validates() -> None:
    values = yaml.safe_load(WORKLOAD_IDENTITY_EXAMPLE.read_text())
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version="v1.31.0")
    assert report["messages"] == [] and report["errors"] == []
    objects = render(values)
    assert kinds(objects) == ["Deployment", "Pod", "Service", "ServiceAccount"]  # no Secret
    for kube_version in KUBE_VERSIONS:
        for obj in objects:
            if obj["kind"] in CORE_KINDS:
                kubernetes_validate.validate(obj, kube_version, strict=True)
    env = env_of(objects)
    assert env["HUAWEICLOUD_SDK_ID_TOKEN_FILE"] == f"{ID_TOKEN_DIR}/id-token"
    assert "HUAWEICLOUD_SDK_PROJECT_ID" not in env  # looked up by region at start-up
    text = notes(values)
    assert "WARNING" not in text and "looked up by region" in text


@pytest.mark.parametrize(
    "values",
    [IDP, OIDC_STS, POD_IDENTITY, merged(IDP, {"auth": {"existingSecret": "c"}})],
    ids=["idp", "oidc-sts", "pod-identity", "idp-and-secret"],
)
def test_workload_identity_passes_strict_validation(values: dict[str, Any]) -> None:
    for obj in render(merged({"config": {"region": "cn-north-4"}}, values)):
        if obj["kind"] in CORE_KINDS:
            kubernetes_validate.validate(obj, KUBE_VERSIONS[-1], strict=True)


def test_no_warning_about_credentials_with_a_workload_identity_in_auto_mode() -> None:
    base = {"config": {"region": "cn-north-4"}}
    assert "no credentials are configured" in notes(base)
    for values in (IDP, OIDC_STS, POD_IDENTITY):
        assert "WARNING" not in notes(merged(base, values, {"auth": {"mode": "auto"}}))


def test_targets_may_leave_the_project_to_be_looked_up_by_region() -> None:
    values = {
        "auth": {"mode": "aksk", "existingSecret": "c"},
        "targets": [
            {"name": "beijing", "region": "cn-north-4"},
            {"name": "shanghai", "region": "cn-east-3"},
        ],
    }
    text = notes(values)
    assert "beijing: project looked up by region in region cn-north-4" in text
    assert "WARNING" not in text
    # Neither a project id nor a region: the schema says which to set.
    error = render_error({"targets": [{"name": "a", "endpoint": "https://modelarts.test"}]})
    assert "project_id" in error and "region" in error
