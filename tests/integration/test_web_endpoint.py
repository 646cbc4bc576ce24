"""The exporter process behind --web.config.file: HTTPS, mutual TLS, basic auth."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode

import bcrypt
import pytest

from tests.support.certs import issue, make_ca
from tests.support.processes import exporter_process

PASSWORD = "scrape-password-1"


def get(url: str, context: ssl.SSLContext | None = None, auth: str | None = None) -> int:
    headers = {"Authorization": "Basic " + b64encode(auth.encode()).decode()} if auth else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=10, context=context
        ) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


def wait_until_up(url: str, context: ssl.SSLContext) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if get(url, context) == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200")


@pytest.fixture
def pki(tmp_path):
    ca = make_ca(tmp_path)
    return {
        "ca": ca,
        "server": issue(ca, tmp_path, "server"),
        "client": issue(ca, tmp_path, "client", "prometheus", client=True),
    }


def test_https_with_basic_auth_and_open_probes(tmp_path, pki):
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    config = tmp_path / "web.yml"
    config.write_text(
        f"tls_server_config:\n  cert_file: {pki['server'].cert}\n  key_file: {pki['server'].key}\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    trust = ssl.create_default_context(cafile=str(pki["ca"].cert))
    with exporter_process("--demo", "--web.config.file", str(config), ready=False) as exporter:
        https = exporter.url.replace("http://", "https://")
        wait_until_up(https + "/-/ready", trust)  # probes need no password
        assert get(https + "/-/healthy", trust) == 200
        assert get(https + "/metrics", trust) == 401
        assert get(https + "/metrics", trust, f"prometheus:{PASSWORD}x") == 401
        assert get(https + "/metrics", trust, f"prometheus:{PASSWORD}") == 200
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            get(exporter.url + "/metrics")  # plain HTTP on the TLS port


def test_mutual_tls_refuses_a_client_without_certificate(tmp_path, pki):
    config = tmp_path / "web.yml"
    config.write_text(
        f"tls_server_config:\n  cert_file: {pki['server'].cert}\n  key_file: {pki['server'].key}\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki['ca'].cert}\n"
    )
    trust = ssl.create_default_context(cafile=str(pki["ca"].cert))
    with_cert = ssl.create_default_context(cafile=str(pki["ca"].cert))
    with_cert.load_cert_chain(str(pki["client"].cert), str(pki["client"].key))
    with exporter_process("--demo", "--web.config.file", str(config), ready=False) as exporter:
        https = exporter.url.replace("http://", "https://")
        wait_until_up(https + "/-/healthy", with_cert)
        assert get(https + "/metrics", with_cert) == 200
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            get(https + "/metrics", trust)


def test_a_bad_web_config_exits_2_naming_the_field(tmp_path):
    config = tmp_path / "web.yml"
    config.write_text("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /x.key\n")
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--demo", "--web.config.file", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "cert_file" in result.stderr and result.stderr.count("\n") == 1
