"""The real process through failed and successful logins, with a password or a workload
identity, its project looked up by region: no secret in its output."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exporter.simulator import DEMO_PROJECT_ID, DEMO_SK, Fleet, Simulator
from exporter.simulator.api import (
    DEMO_IAM_LOGIN,
    DEMO_IAM_USER,
    DEMO_ID_TOKEN,
    DEMO_IDP_ID,
    DEMO_OIDC_AGENCY_URN,
    DEMO_OIDC_PROVIDER_URN,
    DEMO_POD_TOKEN,
    DEMO_REGION,
    POD_IDENTITY_PATH,
)
from tests.support.processes import env_for, exporter_process

BASE = "https://modelarts.cn-north-4.myhuaweicloud.com"
IAM = "https://iam.cn-north-4.myhuaweicloud.com"
METADATA = "http://127.0.0.1:1/openstack/latest/securitykey"  # never contacted: mocked
PROJECT = "p1"
LIST_URL = f"{BASE}/v1/{PROJECT}/demanager/instances"
TOKEN_URL = f"{IAM}/v3/auth/tokens"
PASSWORD = "iam-password-secret-1"
START = 1_800_000_000.0
LIST_OK = {"total_count": 1, "instances": [{"id": "a", "status": "RUNNING"}]}


# -- the real process: no secret in its output ---------------------------------------


def test_no_secret_in_debug_output_through_failed_and_successful_logins(metric_values):
    with Simulator(Fleet(size=5, seed=1)) as sim:
        outputs = []
        for password in ("wrong-password-value", DEMO_IAM_LOGIN[0]):
            env = {
                "MODELARTS_EXPORTER_ENDPOINT": sim.url,
                "MODELARTS_EXPORTER_IAM_ENDPOINT": sim.url,
                "HUAWEICLOUD_SDK_PROJECT_ID": DEMO_PROJECT_ID,
                "MODELARTS_EXPORTER_IAM_USERNAME": DEMO_IAM_USER,
                "MODELARTS_EXPORTER_IAM_PASSWORD": password,
                "MODELARTS_EXPORTER_IAM_DOMAIN": DEMO_IAM_LOGIN[1],
                "MODELARTS_EXPORTER_LOG_LEVEL": "debug",
            }
            with exporter_process(env=env, ready=False) as exporter:
                deadline = time.monotonic() + 10
                up = None
                while time.monotonic() < deadline:
                    try:
                        up = metric_values(exporter.get()[2].decode())("modelarts_up")
                        if up == 1 or password.startswith("wrong"):
                            break
                    except OSError:
                        pass
                    time.sleep(0.2)
                assert up == (0 if password.startswith("wrong") else 1)
                exporter.process.terminate()
                exporter.process.wait(timeout=10)
                outputs.append(exporter.logs() + exporter.process.stdout.read().decode())
        assert "password is wrong" in outputs[0]
        assert sim.tokens, "the successful login got a token"
        for output in outputs:
            for secret in ("wrong-password-value", DEMO_IAM_LOGIN[0], *sim.tokens):
                assert secret not in output


# -- workload identity and the project id looked up by region ------------------------------


def identity_env(sim: Simulator, flow: str, token_file: Path, home: Path) -> dict[str, str]:
    """A process with no key at all: an id token (or pod token) in a file, no project id."""
    env = {
        "MODELARTS_EXPORTER_ENDPOINT": sim.url,
        "MODELARTS_EXPORTER_IAM_ENDPOINT": sim.url,
        "MODELARTS_EXPORTER_STS_ENDPOINT": sim.url,
        "HUAWEICLOUD_SDK_REGION": DEMO_REGION,
        "MODELARTS_EXPORTER_LOG_LEVEL": "debug",
        "HOME": str(home),  # no ~/.huaweicloud/credentials of the machine's
    }
    if flow == "idp":
        env |= {
            "HUAWEICLOUD_SDK_IDP_ID": DEMO_IDP_ID,
            "HUAWEICLOUD_SDK_ID_TOKEN_FILE": str(token_file),
        }
    elif flow == "oidc-sts":
        env |= {
            "HUAWEICLOUD_OIDC_PROVIDER_URN": DEMO_OIDC_PROVIDER_URN,
            "HUAWEICLOUD_OIDC_AGENCY_URN": DEMO_OIDC_AGENCY_URN,
            "HUAWEICLOUD_OIDC_TOKEN_FILE": str(token_file),
        }
    else:
        env |= {
            "HC_CONTAINER_CREDENTIALS_FULL_URI": sim.url + POD_IDENTITY_PATH,
            "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
        }
    return env


@pytest.mark.parametrize("flow", ["idp", "oidc-sts", "pod-identity"])
def test_workload_identity_end_to_end_and_no_token_in_the_output(flow, metric_values, tmp_path):
    good = DEMO_POD_TOKEN if flow == "pod-identity" else DEMO_ID_TOKEN
    token_file = tmp_path / "token"
    with Simulator(Fleet(size=5, seed=1)) as sim:
        # Refused at start: the project cannot be looked up, one line, status 1.
        token_file.write_text("eyJ.a-refused-token-value.sig")
        env = identity_env(sim, flow, token_file, tmp_path)
        refused = subprocess.run(
            [sys.executable, "-m", "exporter", "--web.listen-address", "127.0.0.1:0"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert refused.returncode == 1
        (line,) = refused.stderr.strip().splitlines()
        assert f"cannot look up the project id of region {DEMO_REGION}" in line
        assert "status=401" in line and "invalid" in line
        # Accepted: the project is looked up with the temporary keys, then listed.
        token_file.write_text(good + "\n")
        with exporter_process(env=env) as exporter:
            values = metric_values(exporter.get()[2].decode())
            assert values("modelarts_up", project_id=DEMO_PROJECT_ID) == 1
            auth = values.all("modelarts_exporter_auth_requests_total")
            assert sum(auth.values()) >= 1
            exporter.process.terminate()
            exporter.process.wait(timeout=10)
            output = exporter.logs() + exporter.process.stdout.read().decode()
        assert f"project id of region {DEMO_REGION}: {DEMO_PROJECT_ID}" in output
        assert f"auth_mode={flow} (auto)" in output
        learnt = [t for keys in sim.temporary_keys.values() for t in keys[:2]]
        secrets = [good, "a-refused-token-value", *sim.identity.unscoped_tokens, *learnt]
        for secret in secrets:
            assert secret not in output + refused.stderr


def test_a_region_without_a_project_exits_2_with_one_line_naming_it(tmp_path):
    with Simulator(Fleet(size=5, seed=1)) as sim:
        env = {
            **os.environ,
            **env_for(sim.url),
            "MODELARTS_EXPORTER_IAM_ENDPOINT": sim.url,
            "HUAWEICLOUD_SDK_REGION": "eu-west-101",
            "HOME": str(tmp_path),
        }
        del env["HUAWEICLOUD_SDK_PROJECT_ID"]
        result = subprocess.run(
            [sys.executable, "-m", "exporter", "--web.listen-address", "127.0.0.1:0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "region eu-west-101 has no project these credentials can see" in line
    assert DEMO_SK not in result.stderr + result.stdout


def test_a_targets_file_without_project_ids(metric_values, tmp_path):
    with Simulator(Fleet(size=5, seed=1)) as sim:
        targets = tmp_path / "targets.yml"
        targets.write_text(
            "targets:\n"
            f"  - {{name: beijing, region: {DEMO_REGION}, endpoint: '{sim.url}',"
            f" iam_endpoint: '{sim.url}'}}\n"
        )
        env = {**env_for(sim.url), "MODELARTS_EXPORTER_CONFIG_FILE": str(targets)}
        del env["HUAWEICLOUD_SDK_PROJECT_ID"]
        with exporter_process(env=env) as exporter:
            values = metric_values(exporter.get()[2].decode())
            assert values("modelarts_up", project_id=DEMO_PROJECT_ID) == 1
