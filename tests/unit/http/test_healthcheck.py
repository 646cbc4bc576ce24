"""The image's healthcheck finds the exporter as the exporter configures itself: its flags
(PID 1's command line in a container), else its environment, else the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.http import healthcheck
from exporter.http.healthcheck import exporter_args, target


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODELARTS_EXPORTER_WEB_LISTEN_ADDRESS", "MODELARTS_EXPORTER_WEB_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)


def cmdline(*argv: str) -> bytes:
    return b"".join(arg.encode() + b"\0" for arg in argv)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # The image's exec-form ENTRYPOINT: the kernel runs the script through its shebang.
        (
            ["/opt/venv/bin/python", "/opt/venv/bin/modelarts-exporter", "--demo"],
            ["--demo"],
        ),
        # docker run --init: docker-init is PID 1 and names the entrypoint as given.
        (
            ["/sbin/docker-init", "--", "modelarts-exporter", "--web.listen-address=:9000"],
            ["--web.listen-address=:9000"],
        ),
        (["python3", "-m", "exporter", "--log.level", "warn"], ["--log.level", "warn"]),
        (["/opt/venv/bin/python", "/opt/venv/bin/modelarts-exporter"], []),
        (["/sbin/init", "splash"], None),
        (["python", "-m", "exporter.http.healthcheck"], None),
    ],
)
def test_the_exporters_arguments_in_a_command_line(
    argv: list[str], expected: list[str] | None
) -> None:
    assert exporter_args(cmdline(*argv)) == expected


def test_defaults_are_the_exporters() -> None:
    where = target([])
    assert where.url == "http://127.0.0.1:10200/-/healthy"
    assert not where.tls and not where.tcp_only


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELARTS_EXPORTER_WEB_LISTEN_ADDRESS", ":9100")
    assert target([]).url == "http://127.0.0.1:9100/-/healthy"
    assert target(["--web.listen-address", "127.0.0.2:9200"]).url == (
        "http://127.0.0.2:9200/-/healthy"
    )
    # Flags of the exporter that do not matter here are passed over, unknown ones too.
    assert target(["--demo", "--cache-ttl=5", "--later-flag", "--web.listen-address=:9300"]).port
    assert target(["--web.listen-address=:9300", "--demo"]).port == 9300


@pytest.mark.parametrize(
    ("address", "url"),
    [
        (":10200", "http://127.0.0.1:10200/-/healthy"),
        ("0.0.0.0:10200", "http://127.0.0.1:10200/-/healthy"),
        ("[::]:10200", "http://[::1]:10200/-/healthy"),
        ("[::1]:10201", "http://[::1]:10201/-/healthy"),
        ("10.1.2.3:10202", "http://10.1.2.3:10202/-/healthy"),
    ],
)
def test_the_listen_address_becomes_a_url_it_can_reach(address: str, url: str) -> None:
    assert target([f"--web.listen-address={address}"]).url == url


def test_tls_from_the_web_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.certs import issue, make_ca

    server = issue(None, tmp_path, "server")
    config = tmp_path / "web.yml"
    config.write_text(f"tls_server_config:\n  cert_file: {server.cert}\n  key_file: {server.key}\n")
    monkeypatch.setenv("MODELARTS_EXPORTER_WEB_CONFIG_FILE", str(config))
    where = target([])
    assert where.url == "https://127.0.0.1:10200/-/healthy" and where.tls and not where.tcp_only

    basic_only = tmp_path / "basic.yml"
    basic_only.write_text("basic_auth_users: {}\n")
    assert not target(["--web.config.file", str(basic_only)]).tls  # /-/healthy needs no password

    ca = make_ca(tmp_path)
    config.write_text(
        config.read_text()
        + f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {ca.cert}\n"
    )
    assert target([]).tcp_only


def test_without_flags_it_reads_pid_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid1 = tmp_path / "cmdline"
    pid1.write_bytes(
        cmdline(
            "/opt/venv/bin/python", "/opt/venv/bin/modelarts-exporter", "--web.listen-address=:9"
        )
    )
    monkeypatch.setattr(healthcheck, "PID1_CMDLINE", pid1)
    seen: list[str] = []
    monkeypatch.setattr(healthcheck, "check", lambda where: seen.append(where.url) or "ok")
    assert healthcheck.main([]) == 0
    assert healthcheck.main(["--web.listen-address=:8"]) == 0  # flags given: PID 1 unread
    pid1.unlink()  # not Linux, or not readable: the environment and the defaults
    assert healthcheck.main([]) == 0
    assert seen == [
        "http://127.0.0.1:9/-/healthy",
        "http://127.0.0.1:8/-/healthy",
        "http://127.0.0.1:10200/-/healthy",
    ]


def test_a_flag_without_its_value_is_one_failure_not_a_crash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert healthcheck.main(["--web.listen-address"]) == 1
    assert "healthcheck:" in capsys.readouterr().err
