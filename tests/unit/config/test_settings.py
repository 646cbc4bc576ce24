"""Settings: flags and environment variables, secrets from files, one clear line on error."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from exporter.config.command_line import build_parser, load_settings
from exporter.config.settings import SettingsError

ENV = {
    "HUAWEICLOUD_SDK_REGION": "cn-north-4",
    "HUAWEICLOUD_SDK_PROJECT_ID": "p1",
    "HUAWEICLOUD_SDK_AK": "AKVALUE0001",
    "HUAWEICLOUD_SDK_SK": "sk-very-secret-value",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith(("HUAWEICLOUD_", "MODELARTS_EXPORTER_")):
            monkeypatch.delenv(name)


def load(argv: list[str], monkeypatch, env: dict[str, str] | None = None):
    for name, value in (ENV if env is None else env).items():
        monkeypatch.setenv(name, value)
    return load_settings(vars(build_parser().parse_args(argv)))


def test_environment_and_defaults(monkeypatch):
    s = load([], monkeypatch)
    assert (s.region, s.project_id, s.cache_ttl, s.show_self) == ("cn-north-4", "p1", 30.0, False)
    assert s.modelarts_endpoint == "https://modelarts.cn-north-4.myhuaweicloud.com"
    assert s.iam_base_url == "https://iam.cn-north-4.myhuaweicloud.com"
    assert s.web_listen_address == ":10200"


def test_flags_win_over_environment(monkeypatch):
    monkeypatch.setenv("MODELARTS_EXPORTER_CACHE_TTL", "60")
    s = load(
        [
            "--cache-ttl",
            "15",
            "--log.level",
            "DEBUG",
            "--show-self",
            "--endpoint",
            "http://127.0.0.1:8999/",
        ],
        monkeypatch,
    )
    assert s.cache_ttl == 15 and s.log_level == "debug" and s.show_self is True
    assert s.modelarts_endpoint == "http://127.0.0.1:8999"


def test_settings_are_frozen(monkeypatch):
    s = load([], monkeypatch)
    with pytest.raises(ValidationError):
        s.cache_ttl = 1  # type: ignore[misc]


def test_ap_southeast_1_uses_the_cn_domain(monkeypatch):
    s = load(["--region", "ap-southeast-1"], monkeypatch)
    assert s.modelarts_endpoint == "https://modelarts.ap-southeast-1.myhuaweicloud.cn"


def test_secrets_from_files(monkeypatch, tmp_path):
    (tmp_path / "sk").write_text("sk-from-file\n")
    env = {k: v for k, v in ENV.items() if k != "HUAWEICLOUD_SDK_SK"}
    env["HUAWEICLOUD_SDK_SK_FILE"] = str(tmp_path / "sk")
    s = load([], monkeypatch, env)
    assert s.sk is not None and s.sk.get_secret_value() == "sk-from-file"


def test_secrets_never_in_repr(monkeypatch):
    s = load([], monkeypatch)
    assert "sk-very-secret-value" not in repr(s) and "sk-very-secret-value" not in str(s)


@pytest.mark.parametrize(
    ("argv", "env_drop", "names"),
    [
        (["--cache-ttl", "0"], None, "--cache-ttl / MODELARTS_EXPORTER_CACHE_TTL"),
        (["--cache-ttl", "soon"], None, "--cache-ttl"),
        (["--web.listen-address", "localhost"], None, "--web.listen-address"),
        (["--log.format", "xml"], None, "--log.format"),
        (["--endpoint", "ftp://x"], None, "--endpoint"),
        # Without a region to look it up by, the project id is required.
        (
            ["--endpoint", "https://modelarts.example.com"],
            ("HUAWEICLOUD_SDK_PROJECT_ID", "HUAWEICLOUD_SDK_REGION"),
            "--project-id / HUAWEICLOUD_SDK_PROJECT_ID",
        ),
        ([], "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SK (or HUAWEICLOUD_SDK_SK_FILE)"),
        ([], "HUAWEICLOUD_SDK_REGION", "--region"),
    ],
)
def test_a_bad_setting_names_itself(monkeypatch, argv, env_drop, names):
    dropped = (env_drop,) if isinstance(env_drop, str) else env_drop or ()
    env = {k: v for k, v in ENV.items() if k not in dropped}
    with pytest.raises(SettingsError) as caught:
        load(argv, monkeypatch, env)
    assert names in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_secret_file_names_the_variable(monkeypatch, tmp_path):
    env = {k: v for k, v in ENV.items() if k != "HUAWEICLOUD_SDK_SK"}
    env["HUAWEICLOUD_SDK_SK_FILE"] = str(tmp_path / "absent")
    with pytest.raises(SettingsError, match="HUAWEICLOUD_SDK_SK_FILE"):
        load([], monkeypatch, env)


def test_the_cli_exits_2_with_one_line_and_no_secret(monkeypatch):
    env = {**ENV, "MODELARTS_EXPORTER_CACHE_TTL": "-1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "exporter"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--cache-ttl" in lines[0] and "Traceback" not in result.stderr
    assert ENV["HUAWEICLOUD_SDK_SK"] not in result.stderr + result.stdout


def test_the_cli_prints_its_version():
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--version"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0 and result.stdout.startswith("modelarts-exporter, version ")


@pytest.mark.parametrize("level", ["warn", "WARN", "warning", "Warning"])
def test_warn_is_warning_as_go_exporters_spell_it(monkeypatch, level):
    assert load(["--log.level", level], monkeypatch).log_level == "warning"
    monkeypatch.setenv("MODELARTS_EXPORTER_LOG_LEVEL", level)
    assert load([], monkeypatch).log_level == "warning"


def test_an_unknown_log_level_is_refused(monkeypatch):
    with pytest.raises(SettingsError, match=r"--log\.level"):
        load(["--log.level", "verbose"], monkeypatch)


def test_an_unknown_flag_is_one_line_too():
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--cache-tll", "5"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--cache-tll" in result.stderr
