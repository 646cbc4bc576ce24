"""Child processes of the benchmark, the scrape client and /proc readings.

Every child is started through a `Children` group, which ends them all (SIGTERM, then
SIGKILL) when its `with` block exits, whatever happened inside. Everything listens on
127.0.0.1. The scrape client is `http.client`, one fresh connection per request, the
same for every server measured.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from exporter.simulator import DEMO_AK, DEMO_PROJECT_ID, DEMO_SK
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without any exporter setting, the repository importable, the
    image's malloc setting, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HUAWEICLOUD_", "MODELARTS_EXPORTER_"))
    }
    # Appended: a PYTHONPATH given to the benchmark (a patched copy of `exporter`) wins.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(ROOT)) if p)
    # As in the container image (Dockerfile), so memory is what a pod would use.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    env.update(extra or {})
    return env


def scrape(
    port: int, headers: dict[str, str] | None = None, path: str = "/metrics", timeout: float = 60
) -> tuple[float, int, bytes]:
    """Seconds from connect to last byte, status and body of one GET."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    return time.perf_counter() - started, response.status, body


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def memory_mb(pid: int) -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory, in MiB."""
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024
    return {"rss": found["VmRSS"], "peak": found["VmHWM"]}


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_for(self, path: str, timeout: float) -> float:
        """Seconds until `path` answers 200; raises if the process dies or time runs out."""
        started = time.perf_counter()
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            try:
                if scrape(self.port, path=path, timeout=5)[1] == 200:
                    return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{self.name}: {path} not 200 within {timeout:.0f}s\n{self.log_tail()}")


class Children:
    """Starts children; ends every one of them on exit, even after an error."""

    def __init__(self) -> None:
        self._children: list[Child] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="modelarts-bench-")
        self.tmp = Path(self._tmp.name)

    def __enter__(self) -> Children:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for child in reversed(self._children):
            self.stop(child)
        self._tmp.cleanup()

    def stop(self, child: Child) -> None:
        process = child.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if child in self._children:
            self._children.remove(child)

    def start(
        self,
        name: str,
        args: list[str],
        port: int,
        env: dict[str, str] | None = None,
        stdin: int = subprocess.DEVNULL,
    ) -> Child:
        """`python ARGS`, its output to a log file; `stdin=subprocess.PIPE` to talk to it."""
        log = self.tmp / f"{name}-{port}.log"
        with open(log, "wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, *args],
                cwd=self.tmp,  # not ROOT: `-m` would put it before PYTHONPATH
                env=child_env(env),
                stdin=stdin,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        child = Child(name, process, port, log)
        self._children.append(child)
        return child

    def exporter(self, sim_url: str, cache_ttl: float, extra: tuple[str, ...] = ()) -> Child:
        port = free_port()
        args = ["-m", "exporter", "--endpoint", sim_url, "--project-id", DEMO_PROJECT_ID]
        args += ["--web.listen-address", f"127.0.0.1:{port}", "--cache-ttl", f"{cache_ttl:g}"]
        args += ["--log.level", "warning", *extra]
        env = {"HUAWEICLOUD_SDK_AK": DEMO_AK, "HUAWEICLOUD_SDK_SK": DEMO_SK}
        return self.start("exporter", args, port, env)

    def exporter_with_file(
        self, config: Path, cache_ttl: float, env: dict[str, str], extra: tuple[str, ...] = ()
    ) -> Child:
        """The exporter on the targets of a targets file (`--config.file`)."""
        port = free_port()
        args = ["-m", "exporter", "--config.file", str(config)]
        args += ["--web.listen-address", f"127.0.0.1:{port}", "--cache-ttl", f"{cache_ttl:g}"]
        args += ["--log.level", "warning", *extra]
        return self.start("exporter", args, port, env)

    def naive(self, sim_url: str) -> Child:
        port = free_port()
        args = ["-m", "bench.naive_exporter", "--endpoint", sim_url]
        args += ["--project-id", DEMO_PROJECT_ID, "--port", str(port)]
        env = {"HUAWEICLOUD_SDK_AK": DEMO_AK, "HUAWEICLOUD_SDK_SK": DEMO_SK}
        return self.start("naive", args, port, env)

    def static_server(self, directory: Path, timeout: float = 20) -> Child:
        """The limit server; it picks its own port and writes it as its first line."""
        child = self.start("limit", ["-m", "bench.static_server", str(directory)], 0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and child.alive():
            first = child.log.read_text().split("\n", 1)
            if len(first) == 2 and first[0].strip().isdigit():
                child.port = int(first[0])
                child.wait_for("/metrics", timeout)
                return child
            time.sleep(0.02)
        raise RuntimeError(f"limit server did not start:\n{child.log_tail()}")


def machine() -> str:
    """The number of CPUs and their model, as the report names the machine."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs {model}".strip()
