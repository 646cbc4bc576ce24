"""The project id of a region, looked up in the simulated IAM when none is configured,
with every kind of credentials: signed with AK/SK (permanent or temporary) or a token."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config.settings import Settings
from exporter.config.targets_file import ConfigError, check_unique_projects, load_config
from exporter.pipeline.credentials import (
    ProjectLookupError,
    resolve_project_id,
    resolve_projects,
)
from exporter.simulator import DEMO_AK, DEMO_PROJECT_ID, DEMO_SK, Fleet, Simulator
from exporter.simulator.api import (
    DEMO_IAM_LOGIN,
    DEMO_IAM_USER,
    DEMO_ID_TOKEN,
    DEMO_IDP_ID,
    DEMO_OIDC_AGENCY_URN,
    DEMO_OIDC_PROVIDER_URN,
    DEMO_POD_TOKEN,
    POD_IDENTITY_PATH,
)

REGION = "cn-north-4"  # the simulator's


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(Fleet(size=2, seed=1, evolve=False)) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("HUAWEICLOUD_", "MODELARTS_EXPORTER_", "HC_CONTAINER_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", "/nonexistent-home")


def lookup_settings(sim: Simulator, **values: Any) -> Settings:
    """Settings without a project id, every service at the simulator."""
    base = {"region": REGION, "endpoint": sim.url, "iam_endpoint": sim.url, "sts_endpoint": sim.url}
    return Settings.model_validate({**base, **values})


def token(tmp_path: Path, content: str) -> str:
    path = tmp_path / f"token-{content[:12]}"
    path.write_text(content)
    return str(path)


def modes(sim: Simulator, tmp_path: Path) -> dict[str, dict[str, Any]]:
    issued = sim.identity.issue_token(
        json.dumps(
            {
                "auth": {
                    "identity": {
                        "password": {
                            "user": {
                                "name": DEMO_IAM_USER,
                                "password": DEMO_IAM_LOGIN[0],
                                "domain": {"name": DEMO_IAM_LOGIN[1]},
                            }
                        }
                    },
                    "scope": {"project": {"id": DEMO_PROJECT_ID}},
                }
            }
        ).encode()
    )[1]["X-Subject-Token"]
    return {
        "aksk": {"ak": DEMO_AK, "sk": DEMO_SK},
        "token": {"auth_token": issued},
        "iam": {
            "iam_username": DEMO_IAM_USER,
            "iam_password": DEMO_IAM_LOGIN[0],
            "iam_domain": DEMO_IAM_LOGIN[1],
        },
        "idp": {"idp_id": DEMO_IDP_ID, "id_token_file": token(tmp_path, DEMO_ID_TOKEN)},
        "oidc-sts": {
            "oidc_provider_urn": DEMO_OIDC_PROVIDER_URN,
            "oidc_agency_urn": DEMO_OIDC_AGENCY_URN,
            "oidc_token_file": token(tmp_path, DEMO_ID_TOKEN),
        },
        "pod-identity": {
            "pod_identity_uri": sim.url + POD_IDENTITY_PATH,
            "pod_identity_token_file": token(tmp_path, DEMO_POD_TOKEN),
        },
        "ecs": {"auth_mode": "ecs", "metadata_url": sim.url + "/openstack/latest/securitykey"},
    }


@pytest.mark.parametrize("mode", ["aksk", "token", "iam", "idp", "oidc-sts", "pod-identity", "ecs"])
def test_the_project_of_the_region_is_found_with_every_kind_of_credentials(
    mode, sim, tmp_path, caplog
):
    settings = lookup_settings(sim, **modes(sim, tmp_path)[mode])
    assert settings.effective_auth_mode == mode
    before = sim.stats.rejected
    with caplog.at_level(logging.INFO, logger="exporter.pipeline.credentials"):
        assert resolve_project_id(settings) == DEMO_PROJECT_ID
    assert sim.stats.rejected == before
    (line,) = [r.getMessage() for r in caplog.records]
    assert f"project id of region {REGION}: {DEMO_PROJECT_ID}" in line and mode in line


def test_the_lookup_is_done_once_per_process(sim):
    settings = lookup_settings(sim, ak=DEMO_AK, sk=DEMO_SK, cache_ttl=17)
    before = sim.stats.iam_requests
    resolved = resolve_projects({"a": settings, "b": settings})
    assert {s.project_id for s in resolved.values()} == {DEMO_PROJECT_ID}
    resolve_projects({"a": settings})
    assert sim.stats.iam_requests == before + 1


def test_a_region_without_a_project_stops_with_status_2(sim):
    settings = lookup_settings(sim, ak=DEMO_AK, sk=DEMO_SK, region="eu-west-101")
    with pytest.raises(ProjectLookupError) as caught:
        resolve_projects({"": settings})
    err = caught.value
    assert err.exit_status == 2
    text = str(err)
    assert text.startswith("region eu-west-101 has no project these credentials can see")
    assert "--project-id" in text and "request_id=" in text and "\n" not in text


def test_refused_credentials_stop_with_status_1(sim):
    settings = lookup_settings(sim, ak=DEMO_AK, sk="a-wrong-secret-key-value", cache_ttl=19)
    with pytest.raises(ProjectLookupError) as caught:
        resolve_projects({"research": settings})
    err = caught.value
    assert err.exit_status == 1
    assert str(err).startswith(f"target research: cannot look up the project id of region {REGION}")
    assert "status=401" in str(err) and "a-wrong-secret-key-value" not in str(err)


def test_the_credentials_files_project_id_needs_no_lookup(sim, tmp_path):
    path = tmp_path / "credentials"
    path.write_text(f"[basic]\nak = {DEMO_AK}\nsk = {DEMO_SK}\nproject_id = from-the-file\n")
    settings = lookup_settings(sim, credentials_file=str(path))
    before = sim.stats.iam_requests
    assert resolve_project_id(settings) == "from-the-file"
    assert sim.stats.iam_requests == before


def test_a_configured_project_id_needs_no_lookup(sim):
    settings = lookup_settings(sim, ak=DEMO_AK, sk=DEMO_SK, project_id="given")
    assert resolve_projects({"x": settings})["x"].project_id == "given"


# -- the targets file -----------------------------------------------------------------------


def targets_file(tmp_path: Path, sim: Simulator, targets: list[dict[str, Any]]) -> str:
    path = tmp_path / "targets.yml"
    for target in targets:
        target.setdefault("endpoint", sim.url)
        target.setdefault("iam_endpoint", sim.url)
    path.write_text(yaml.safe_dump({"targets": targets, "allow_inline_secrets": True}))
    return str(path)


def test_targets_may_omit_the_project_id(sim, tmp_path):
    auth = {"ak": DEMO_AK, "sk": DEMO_SK}
    path = targets_file(
        tmp_path,
        sim,
        [
            {"name": "looked-up", "region": REGION, "auth": auth},
            {"name": "given", "region": REGION, "project_id": "another", "auth": auth},
        ],
    )
    resolved = resolve_projects(load_config(path, Settings.model_validate({"demo": True})))
    assert resolved["looked-up"].project_id == DEMO_PROJECT_ID
    assert resolved["given"].project_id == "another"
    check_unique_projects(path, resolved)


def test_two_targets_that_turn_out_to_be_one_project_are_refused(sim, tmp_path):
    auth = {"ak": DEMO_AK, "sk": DEMO_SK}
    path = targets_file(
        tmp_path,
        sim,
        [
            {"name": "looked-up", "region": REGION, "auth": auth},
            {"name": "given", "region": REGION, "project_id": DEMO_PROJECT_ID, "auth": auth},
        ],
    )
    resolved = resolve_projects(load_config(path, Settings.model_validate({"demo": True})))
    with pytest.raises(ConfigError) as caught:
        check_unique_projects(path, resolved)
    assert caught.value.problems == [
        f"targets looked-up, given are all project {DEMO_PROJECT_ID}: list each project once"
    ]
