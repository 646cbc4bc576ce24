"""The chart with several projects (the targets file) and a locked-down endpoint (TLS, basic auth).

Rendered by the real Helm engine; see chart.py. A missing tool fails these tests."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import (
    CHART,
    FULLNAME,
    MUTUAL_TLS,
    RESEARCH_KEYS,
    TARGET_OPTIONS,
    WEB_OPTIONS,
    container,
    env_of,
    kinds,
    merged,
    notes,
    one,
    render,
    render_error,
    targets_config_map,
)

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
    from exporter.config.command_line import load_settings
    from exporter.config.targets_file import load_config

    exporter_environment(monkeypatch, pod_filesystem(render(values), secrets, tmp_path))
    settings = load_settings({})
    assert settings.config_file, "no targets file"
    return load_config(settings.config_file, settings)


def test_targets_become_a_mounted_targets_file() -> None:
    objects = render(TARGET_OPTIONS)
    assert kinds(objects) == [
        "ConfigMap", "Deployment", "Pod", "Service", "ServiceAccount", "ServiceMonitor"
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
    assert (training.region, training.api, training.cache_ttl) == ("cn-north-4", "auto", 45)
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

    from exporter.http.webconfig import load_web_config, ssl_context
    from tests.support.certs import issue, make_ca

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
