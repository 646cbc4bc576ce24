"""The real process through failed and successful logins: no secret in its output."""

from __future__ import annotations

import time

from exporter.simulator import DEMO_PROJECT_ID, Fleet, Simulator
from exporter.simulator.api import DEMO_IAM_LOGIN, DEMO_IAM_USER
from tests.support.processes import exporter_process

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
