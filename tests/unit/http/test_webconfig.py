"""--web.config.file: the toolkit's YAML, TLS with real certificates, mutual TLS, basic auth."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import bcrypt
import pytest
from prometheus_client.exposition import ThreadingWSGIServer

from exporter.http import webconfig
from exporter.http.webconfig import (
    BasicAuth,
    TLSServerMixin,
    WebConfig,
    WebConfigError,
    load_web_config,
    ssl_context,
    wrap_app,
)
from tests.support.certs import Pair, issue, make_ca

PASSWORD = "s3cret-scrape-password"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pair]:
    """A server CA and certificate, a client CA and certificate, and an outsider's."""
    d = tmp_path_factory.mktemp("pki")
    server_ca = make_ca(d, "server-ca", "server CA")
    client_ca = make_ca(d, "client-ca", "client CA")
    other_ca = make_ca(d, "other-ca", "someone else's CA")
    return {
        "server_ca": server_ca,
        "server": issue(server_ca, d, "server"),
        "client_ca": client_ca,
        "client": issue(client_ca, d, "client", "prometheus", client=True),
        "outsider": issue(other_ca, d, "outsider", "intruder", client=True),
    }


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(text)
    return path


def tls_yaml(pki: dict[str, Pair], extra: str = "") -> str:
    return (
        f"tls_server_config:\n"
        f"  cert_file: {pki['server'].cert}\n"
        f"  key_file: {pki['server'].key}\n{extra}"
    )


# -- loading -------------------------------------------------------------------------------


def test_a_full_file_loads_and_relative_paths_follow_the_file(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        f"""
tls_server_config:
  cert_file: certs/server.crt
  key_file: /etc/keys/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  min_version: TLS13
http_server_config:
  http2: false
  headers:
    Strict-Transport-Security: max-age=31536000
basic_auth_users:
  prometheus: {HASH}
""",
    )
    config = load_web_config(path)
    tls = config.tls_server_config
    assert tls is not None
    assert tls.cert_file == tmp_path / "certs/server.crt"
    assert tls.key_file == Path("/etc/keys/server.key")
    assert tls.client_ca_file == tmp_path / "ca.crt"
    assert tls.min_version == "TLS13"
    assert config.basic_auth_users["prometheus"].get_secret_value() == HASH
    assert HASH not in repr(config)  # hashes are kept out of reprs and logs


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "{}\n"])
def test_an_empty_file_means_plain_http_without_auth(tmp_path: Path, text: str) -> None:
    config = load_web_config(write_config(tmp_path, text))
    assert config == WebConfig()
    assert ssl_context(config) is None
    app = wrap_app(hello, config)
    assert app is hello


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("tls_server_config:\n  cert_file: a.crt\n", "tls_server_config.key_file: Field required"),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  certfile: c\n",
            "tls_server_config.certfile: Extra inputs are not permitted",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n",
            "tls_server_config.min_version: Input should be 'TLS10', 'TLS11', 'TLS12' or 'TLS13'",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n"
            "  client_auth_type: RequireAndVerifyClientCert\n",
            "tls_server_config: client_ca_file is required with RequireAndVerifyClientCert",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n",
            "tls_server_config: client_ca_file is set but client_auth_type does not verify",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n"
            "  client_auth_type: RequireAnyClientCert\n",
            "tls_server_config.client_auth_type: RequireAnyClientCert is not supported",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: VerifyAlways\n",
            "tls_server_config.client_auth_type: Input should be",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n"
            "  min_version: TLS13\n  max_version: TLS12\n",
            "max_version is lower than min_version",
        ),
        (
            "basic_auth_users:\n  alice: plain-text-password\n",
            "basic_auth_users: the password of 'alice' is not a bcrypt hash",
        ),
        (
            "basic_auth_users:\n  alice: [1, 2]\n",
            "basic_auth_users.alice: Input should be a valid string",
        ),
        (
            "http_server_config:\n  headers:\n    Content-Type: text/html\n",
            "http_server_config.headers: header 'Content-Type' cannot be set here",
        ),
        ("basic_auth_user:\n  alice: x\n", "basic_auth_user: Extra inputs are not permitted"),
        ("tls_server_config: [\n", "not valid YAML at line"),
        ("- a\n- b\n", "must be a mapping of settings"),
    ],
)
def test_a_wrong_file_is_refused_naming_the_field(tmp_path: Path, text: str, says: str) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    message = str(caught.value)
    assert message.startswith(f"web config {path}: ")
    assert says in message
    assert "\n" not in message
    assert "plain-text-password" not in message  # inputs never echo into errors


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(WebConfigError, match=r"web\.yml: cannot read it: No such file"):
        load_web_config(tmp_path / "web.yml")


def test_unusable_certificates_are_named(tmp_path: Path, pki: dict[str, Pair]) -> None:
    missing = WebConfig.model_validate(
        {"tls_server_config": {"cert_file": tmp_path / "nope.crt", "key_file": pki["server"].key}}
    )
    with pytest.raises(WebConfigError, match=r"tls_server_config\.cert_file: cannot read"):
        ssl_context(missing)
    mismatched = WebConfig.model_validate(
        {"tls_server_config": {"cert_file": pki["server"].cert, "key_file": pki["client"].key}}
    )
    with pytest.raises(WebConfigError, match=r"cert_file/key_file: not a matching"):
        ssl_context(mismatched)
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("not a certificate\n")
    bad_ca = WebConfig.model_validate(
        {
            "tls_server_config": {
                "cert_file": pki["server"].cert,
                "key_file": pki["server"].key,
                "client_auth_type": "RequireAndVerifyClientCert",
                "client_ca_file": garbage,
            }
        }
    )
    with pytest.raises(WebConfigError, match=r"tls_server_config\.client_ca_file: not PEM"):
        ssl_context(bad_ca)


# -- serving -------------------------------------------------------------------------------


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello\n"]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class Server(TLSServerMixin, ThreadingWSGIServer):  # type: ignore[misc]
    daemon_threads = True


@contextmanager
def serve(tmp_path: Path, text: str) -> Iterator[int]:
    """The config file `text` served around `hello` on 127.0.0.1; yields the port."""
    config = load_web_config(write_config(tmp_path, text))
    server = make_server(
        "127.0.0.1", 0, wrap_app(hello, config), Server, handler_class=QuietHandler
    )
    server.enable_tls(ssl_context(config))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def client_context(pki: dict[str, Pair], cert: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["server_ca"].cert))
    if cert:
        context.load_cert_chain(pki[cert].cert, pki[cert].key)
    return context


def get(
    port: int,
    context: ssl.SSLContext | None,
    auth: tuple[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    if context is None:
        connection: http.client.HTTPConnection = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=5
        )
    else:
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context)
    headers = {}
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        connection.request("GET", "/metrics", headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


REFUSED = (OSError, http.client.HTTPException)  # ssl.SSLError and resets are OSErrors


def test_https_works_and_plain_http_is_refused(tmp_path: Path, pki: dict[str, Pair]) -> None:
    with serve(tmp_path, tls_yaml(pki)) as port:
        assert get(port, client_context(pki))[0] == 200
        with pytest.raises(REFUSED):
            get(port, None)
        # An untrusting client refuses the server too: the certificate is really checked.
        with pytest.raises(ssl.SSLCertVerificationError):
            get(port, ssl.create_default_context())
        assert get(port, client_context(pki))[0] == 200  # the failures harmed nothing


def test_a_client_that_never_shakes_hands_holds_up_nobody(
    tmp_path: Path, pki: dict[str, Pair]
) -> None:
    with serve(tmp_path, tls_yaml(pki)) as port, socket.create_connection(("127.0.0.1", port)):
        started = time.monotonic()
        assert get(port, client_context(pki))[0] == 200
        assert time.monotonic() - started < 2


def test_min_version_is_enforced(tmp_path: Path, pki: dict[str, Pair]) -> None:
    with serve(tmp_path, tls_yaml(pki, "  min_version: TLS13\n")) as port:
        old = client_context(pki)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(ssl.SSLError):
            get(port, old)
        assert get(port, client_context(pki))[0] == 200


def test_mutual_tls(tmp_path: Path, pki: dict[str, Pair]) -> None:
    extra = (
        f"  client_auth_type: RequireAndVerifyClientCert\n"
        f"  client_ca_file: {pki['client_ca'].cert}\n"
    )
    with serve(tmp_path, tls_yaml(pki, extra)) as port:
        with pytest.raises(REFUSED):
            get(port, client_context(pki))
        with pytest.raises(REFUSED):
            get(port, client_context(pki, "outsider"))
        assert get(port, client_context(pki, "client"))[0] == 200


def test_verify_if_given_accepts_no_certificate_but_not_a_foreign_one(
    tmp_path: Path, pki: dict[str, Pair]
) -> None:
    extra = (
        f"  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: {pki['client_ca'].cert}\n"
    )
    with serve(tmp_path, tls_yaml(pki, extra)) as port:
        assert get(port, client_context(pki))[0] == 200
        assert get(port, client_context(pki, "client"))[0] == 200
        with pytest.raises(REFUSED):
            get(port, client_context(pki, "outsider"))


def test_basic_auth_over_tls(tmp_path: Path, pki: dict[str, Pair]) -> None:
    text = tls_yaml(pki) + f"basic_auth_users:\n  prometheus: {HASH}\n"
    with serve(tmp_path, text) as port:
        context = client_context(pki)
        status, headers, _ = get(port, context)
        assert status == 401
        assert headers["WWW-Authenticate"] == 'Basic realm="modelarts-exporter"'
        assert get(port, context, ("prometheus", "wrong"))[0] == 401
        assert get(port, context, ("nobody", PASSWORD))[0] == 401
        status, _, body = get(port, context, ("prometheus", PASSWORD))
        assert (status, body) == (200, b"hello\n")


def test_configured_headers_are_on_every_answer(tmp_path: Path) -> None:
    text = (
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        f"basic_auth_users:\n  prometheus: {HASH}\n"
    )
    with serve(tmp_path, text) as port:
        denied = get(port, None)
        allowed = get(port, None, ("prometheus", PASSWORD))
    assert denied[0] == 401 and denied[1]["X-Frame-Options"] == "deny"
    assert allowed[0] == 200 and allowed[1]["X-Frame-Options"] == "deny"


# -- basic auth, below the server ------------------------------------------------------------


def call(app: Any, authorization: str | None = None, path: str = "/metrics") -> str:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    seen: list[str] = []
    app(environ, lambda status, headers, *exc: seen.append(status))
    return seen[0]


def basic(user: str | bytes, password: str | bytes) -> str:
    raw = (user if isinstance(user, bytes) else user.encode()) + b":"
    raw += password if isinstance(password, bytes) else password.encode()
    return "Basic " + base64.b64encode(raw).decode()


@pytest.fixture
def checkpw_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return calls


def test_a_successful_check_is_cached_a_failed_one_never(checkpw_calls: list[bytes]) -> None:
    app = BasicAuth(hello, {"prometheus": HASH})
    assert call(app, basic("prometheus", PASSWORD)) == "200 OK"
    assert len(checkpw_calls) == 1
    for _ in range(5):
        assert call(app, basic("prometheus", PASSWORD)) == "200 OK"
    assert len(checkpw_calls) == 1  # the scrapes after the first pay no bcrypt
    for _ in range(3):
        assert call(app, basic("prometheus", "wrong")) == "401 Unauthorized"
    assert len(checkpw_calls) == 4  # failures are checked, every time
    # An unknown user costs a bcrypt check too: its timing says nothing.
    assert call(app, basic("nobody", PASSWORD)) == "401 Unauthorized"
    assert len(checkpw_calls) == 5


def test_the_cache_is_bounded_and_expires(checkpw_calls: list[bytes]) -> None:
    users = {f"user{i}": bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode() for i in range(4)}
    app = BasicAuth(hello, users, cache_size=2, cache_ttl=0.2)
    for i in range(4):
        assert call(app, basic(f"user{i}", "pw")) == "200 OK"
    assert len(app._cache) == 2
    assert call(app, basic("user3", "pw")) == "200 OK"
    assert len(checkpw_calls) == 4  # user3 still cached
    time.sleep(0.3)
    assert call(app, basic("user3", "pw")) == "200 OK"
    assert len(checkpw_calls) == 5  # expired: checked again


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Bearer " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode(),
        basic("prometheus", PASSWORD + "x"),
        basic("prometheus", "x" * 100),  # beyond bcrypt's 72 bytes: refused, not a crash
        basic("prometheus", b"\xff\xfe"),
        basic(b"\xff", PASSWORD),
        basic("Prometheus", PASSWORD),  # names are case-sensitive
    ],
)
def test_anything_but_the_right_credentials_is_401(authorization: str) -> None:
    app = BasicAuth(hello, {"prometheus": HASH})
    assert call(app, authorization) == "401 Unauthorized"


def test_the_scheme_is_case_insensitive_and_unicode_names_work() -> None:
    app = BasicAuth(hello, {"prometheus": HASH, "运维": HASH})
    token = base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
    assert call(app, f"basic {token}") == "200 OK"
    assert call(app, basic("运维", PASSWORD)) == "200 OK"
    # a password containing ':' is split at the first one only
    with_colon = bcrypt.hashpw(b"a:b", bcrypt.gensalt(rounds=4)).decode()
    assert call(BasicAuth(hello, {"u": with_colon}), basic("u", "a:b")) == "200 OK"


def test_exempt_paths_skip_the_check() -> None:
    app = BasicAuth(hello, {"prometheus": HASH}, exempt_paths=["/-/healthy"])
    assert call(app, path="/-/healthy") == "200 OK"
    assert call(app, path="/metrics") == "401 Unauthorized"


def test_without_bcrypt_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bcrypt", None)
    with pytest.raises(WebConfigError, match="basic_auth_users needs the bcrypt package"):
        BasicAuth(hello, {"prometheus": HASH})
    # TLS alone never needs it.
    assert webconfig.wrap_app(hello, WebConfig()) is hello
