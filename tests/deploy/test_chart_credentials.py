"""The chart's credentials: every auth mode from a Secret, an existing Secret or files.

Rendered by the real Helm engine; see chart.py. A missing tool fails these tests."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.chart import (
    FULLNAME,
    PORT,
    container,
    env_of,
    kinds,
    merged,
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
