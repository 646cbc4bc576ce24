"""The demo compose stack: what it mounts exists, and its Prometheus config is valid.

Docker is not needed: the files are read as Docker would read them, and the Prometheus
configuration is checked by promtool with the container paths mapped back to the repo.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from exporter.config.settings import DEFAULT_PORT
from tests.support.prometheus import (
    COMPOSE_DIR,
    DASHBOARD_FILES,
    ROOT,
    RULE_FILES,
    load_yaml,
    run,
)
from tests.support.tools import require_tool

COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, PurePosixPath]]:
    """(host path, container path) of every bind mount; named volumes are left out."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append(((COMPOSE_DIR / source).resolve(), PurePosixPath(target)))
    return mounts


def host_path(service: dict[str, Any], container_path: str) -> Path:
    """Where a path inside the container comes from on the host, through the bind mounts."""
    path = PurePosixPath(container_path)
    for source, target in sorted(bind_mounts(service), key=lambda m: -len(m[1].parts)):
        if path == target or target in path.parents:
            return source / path.relative_to(target)
    raise AssertionError(f"{container_path} is not mounted into the container")


def test_services(compose):
    services = compose["services"]
    assert set(services) >= {"exporter", "prometheus", "grafana"}
    exporter = services["exporter"]
    assert exporter["image"] == "modelarts-exporter:latest"
    assert (COMPOSE_DIR / exporter["build"]["context"]).resolve() == ROOT
    assert (ROOT / "Dockerfile").is_file(), "the build context has no Dockerfile"
    assert "--demo" in exporter["command"]
    assert f"{DEFAULT_PORT}:{DEFAULT_PORT}" in exporter["ports"]
    for name in ("prometheus", "grafana"):
        image = services[name]["image"]
        assert re.search(r":v?\d+\.\d+\.\d+$", image), f"pin {name}'s image version: {image}"


def test_every_mounted_file_exists(compose):
    mounts = [m for s in compose["services"].values() for m in bind_mounts(s)]
    assert len(mounts) >= 5
    for source, target in mounts:
        assert source.exists(), f"{source} (mounted at {target}) does not exist"
    for name in compose.get("volumes") or {}:
        assert any(
            v.split(":")[0] == name
            for s in compose["services"].values()
            for v in s.get("volumes", [])
        ), f"volume {name} is unused"


def test_prometheus_config_passes_promtool(compose, tmp_path):
    """promtool check config, with the rule files' container paths mapped to the repo."""
    promtool = require_tool("promtool")
    prometheus = compose["services"]["prometheus"]
    config_arg = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    config_path = host_path(prometheus, config_arg.split("=", 1)[1])
    config = load_yaml(config_path)

    rule_files = [host_path(prometheus, f) for f in config["rule_files"]]
    assert sorted(rule_files) == sorted(RULE_FILES), "the demo loads every rule file"
    config["rule_files"] = [str(p) for p in rule_files]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))

    result = run(promtool, "check", "config", checked)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in rule_files:  # promtool checked the rule files too, not just their names
        assert f"Checking {path}" in result.stdout, result.stdout


def test_prometheus_scrapes_the_exporter_under_a_job_the_alerts_select(compose):
    prometheus = compose["services"]["prometheus"]
    config = load_yaml(host_path(prometheus, "/etc/prometheus/prometheus.yml"))
    jobs = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    exporter_jobs = [
        name for name, targets in jobs.items() if f"exporter:{DEFAULT_PORT}" in targets
    ]
    assert exporter_jobs, "no job scrapes the exporter service"
    assert all(re.fullmatch(".*modelarts.*", name) for name in exporter_jobs)
    timeout = config["global"]["scrape_timeout"]
    assert int(timeout.rstrip("s")) > 8, "scrape timeout must exceed the exporter's refresh budget"


def test_grafana_provisions_the_datasource_and_every_dashboard(compose):
    grafana = compose["services"]["grafana"]
    datasources = host_path(grafana, "/etc/grafana/provisioning/datasources")
    (ds,) = [d for f in sorted(datasources.glob("*.yml")) for d in load_yaml(f)["datasources"]]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090" and ds["isDefault"]

    providers_dir = host_path(grafana, "/etc/grafana/provisioning/dashboards")
    (provider,) = [
        p for f in sorted(providers_dir.glob("*.yml")) for p in load_yaml(f)["providers"]
    ]
    dashboards = host_path(grafana, provider["options"]["path"])
    assert dashboards == DASHBOARD_FILES[0].parent
    assert sorted(dashboards.glob("*.json")) == list(DASHBOARD_FILES)
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path(grafana, home).is_file()
