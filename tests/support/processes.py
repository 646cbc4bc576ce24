"""Runs `python -m exporter` as a real process on a free loopback port, for e2e tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def env_for(endpoint: str, **extra: str) -> dict[str, str]:
    """The environment of an exporter pointed at a simulator's URL with the demo keys."""
    from exporter.simulator import DEMO_AK, DEMO_PROJECT_ID, DEMO_SK

    return {
        "MODELARTS_EXPORTER_ENDPOINT": endpoint,
        "HUAWEICLOUD_SDK_PROJECT_ID": DEMO_PROJECT_ID,
        "HUAWEICLOUD_SDK_AK": DEMO_AK,
        "HUAWEICLOUD_SDK_SK": DEMO_SK,
        **extra,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ExporterProcess:
    process: subprocess.Popen[bytes]
    url: str

    def get(
        self, path: str = "/metrics", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"exporter exited with {self.process.returncode}")
            try:
                if self.get("/-/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("exporter not ready in time")

    def logs(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read().decode(errors="replace")


def exporter_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the exporter's own settings, then `env`: an
    exporter started by a test sees only what the test gives it."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HUAWEICLOUD_", "MODELARTS_EXPORTER_"))
    }
    return {**clean, **(env or {})}


def run_exporter(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m exporter ARGS` run to its end (a check, --version), its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        env=exporter_env(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def exporter_process(
    *args: str, env: dict[str, str] | None = None, ready: bool = True
) -> Iterator[ExporterProcess]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--web.listen-address", f"127.0.0.1:{port}", *args],
        env=exporter_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    exporter = ExporterProcess(process, f"http://127.0.0.1:{port}")
    try:
        if ready:
            exporter.wait_ready()
        yield exporter
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s: a server started by a test never outlives it."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
