"""`--web.config.file`: TLS and basic auth, in the Prometheus exporter-toolkit format.

The same YAML file a Go exporter takes (see the exporter-toolkit's web-configuration
document), so one Secret serves them all:

    tls_server_config:
      cert_file: server.crt          # relative paths are relative to this file
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional: mutual TLS
      client_ca_file: clients-ca.crt
      min_version: TLS12
    http_server_config:
      headers: {Strict-Transport-Security: max-age=31536000}
    basic_auth_users:
      prometheus: $2b$12$...          # bcrypt hash: htpasswd -nBC 12 "" | tr -d ':'

`load_web_config` validates the file and names the field at fault; `ssl_context` builds
the server's TLS context; `TLSServerMixin` does each TLS handshake in the request's own
thread (a client that connects and sends nothing never holds up the others); `wrap_app`
puts `BasicAuth` and the configured headers around the WSGI application. bcrypt is
imported only when `basic_auth_users` is set.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import re
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import yaml
from cachetools import TTLCache
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

log = logging.getLogger(__name__)

REALM = "modelarts-exporter"
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

TLSName = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
ClientAuthType = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]
# A bcrypt hash as htpasswd and Go's bcrypt write it: $2a$, $2b$ or $2y$, cost, 53 chars.
_BCRYPT_HASH = re.compile(r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
# Response headers the toolkit lets a config set; the others are the application's.
_SETTABLE_HEADERS = frozenset(
    {
        "strict-transport-security",
        "x-content-type-options",
        "x-frame-options",
        "x-xss-protection",
        "content-security-policy",
    }
)


class WebConfigError(ValueError):
    """The web config file is unreadable or wrong; `str()` names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class TLSServerConfig(_Model):
    cert_file: Path
    key_file: Path
    client_auth_type: ClientAuthType = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: TLSName = "TLS12"
    max_version: TLSName | None = None

    @field_validator("cert_file", "key_file", "client_ca_file")
    @classmethod
    def _resolve(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """Relative paths are relative to the config file's directory, as in the toolkit."""
        if value is None or value.is_absolute():
            return value
        base = (info.context or {}).get("base")
        return Path(base) / value if base else value

    @field_validator("client_auth_type")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value == "RequireAnyClientCert":
            raise ValueError(
                "RequireAnyClientCert is not supported (Python's TLS cannot require a "
                "certificate without verifying it): use RequireAndVerifyClientCert "
                "with client_ca_file"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TLSServerConfig:
        verifies = self.client_auth_type in (
            "VerifyClientCertIfGiven",
            "RequireAndVerifyClientCert",
        )
        if verifies and self.client_ca_file is None:
            raise ValueError(f"client_ca_file is required with {self.client_auth_type}")
        if not verifies and self.client_ca_file is not None:
            raise ValueError(
                "client_ca_file is set but client_auth_type does not verify client "
                "certificates: set client_auth_type to RequireAndVerifyClientCert"
            )
        if self.max_version is not None and self.max_version < self.min_version:
            raise ValueError("max_version is lower than min_version")
        return self


class HTTPServerConfig(_Model):
    http2: bool = True  # accepted for compatibility; this server speaks HTTP/1.1
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _settable(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header in value.items():
            if name.lower() not in _SETTABLE_HEADERS:
                raise ValueError(f"header {name!r} cannot be set here")
            if "\r" in header or "\n" in header:
                raise ValueError(f"header {name!r} has a line break in its value")
        return value


class WebConfig(_Model):
    """The whole file; every part is optional (an empty file serves plain HTTP)."""

    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig | None = None
    basic_auth_users: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt_hashes(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for user, hashed in value.items():
            if not user or ":" in user:
                raise ValueError(f"user name {user!r} is empty or contains ':'")
            if not _BCRYPT_HASH.match(hashed.get_secret_value()):
                raise ValueError(f"the password of {user!r} is not a bcrypt hash ($2b$...)")
        return value


def load_web_config(path: str | Path) -> WebConfig:
    """Read and validate the file; raises `WebConfigError` naming the field at fault."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise WebConfigError(f"web config {path}: cannot read it: {reason}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise WebConfigError(f"web config {path}: not valid YAML{at}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise WebConfigError(f"web config {path}: must be a mapping of settings")
    try:
        return WebConfig.model_validate(document, context={"base": path.parent})
    except ValidationError as err:
        error = err.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in error["loc"]) or "file"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise WebConfigError(f"web config {path}: {where}: {message}") from None


# -- TLS ---------------------------------------------------------------------------------


def ssl_context(config: WebConfig | None) -> ssl.SSLContext | None:
    """The server's TLS context, or None for plain HTTP. Raises `WebConfigError` when a
    certificate, key or CA file cannot be used (the field is named)."""
    tls = config.tls_server_config if config else None
    if tls is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    if tls.max_version is not None:
        context.maximum_version = TLS_VERSIONS[tls.max_version]
    for name in ("cert_file", "key_file"):
        _check_readable(name, getattr(tls, name))
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (ssl.SSLError, ValueError) as err:
        raise WebConfigError(
            f"tls_server_config.cert_file/key_file: not a matching PEM certificate and key "
            f"({_ssl_reason(err)})"
        ) from None
    if tls.client_ca_file is not None:
        _check_readable("client_ca_file", tls.client_ca_file)
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except (ssl.SSLError, ValueError) as err:
            raise WebConfigError(
                f"tls_server_config.client_ca_file: not PEM certificates ({_ssl_reason(err)})"
            ) from None
    context.verify_mode = {
        "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
        "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    }.get(tls.client_auth_type, ssl.CERT_NONE)  # RequestClientCert: asked, never checked
    return context


def _check_readable(field: str, path: Path) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as err:
        raise WebConfigError(
            f"tls_server_config.{field}: cannot read {path}: {err.strerror or err}"
        ) from None


def _ssl_reason(err: Exception) -> str:
    return str(getattr(err, "reason", None) or err)


class TLSServerMixin(socketserver.TCPServer):
    """Serve TLS once `enable_tls` is called: put it first among a server's bases.

    Wrapping the listening socket, as prometheus_client does, shakes hands inside
    `accept()` in the serving thread, so one client that connects and sends nothing stops
    every other. Here the accepted socket is wrapped without a handshake, which then runs
    in the request's own thread, bounded by `handshake_timeout`; a failed handshake (a
    plain-HTTP client, a missing client certificate) closes that connection quietly.
    """

    handshake_timeout = 10.0
    tls_context: ssl.SSLContext | None = None

    def enable_tls(self, context: ssl.SSLContext | None) -> None:
        self.tls_context = context

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        if self.tls_context is None:
            return sock, address
        try:
            wrapped = self.tls_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        except OSError:
            sock.close()
            raise
        return wrapped, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(self.handshake_timeout)
                request.do_handshake()
                request.settimeout(None)
            except (OSError, ValueError) as err:  # ssl.SSLError and timeouts are OSErrors
                log.debug("TLS handshake with %s failed: %s", client_address, err)
                return
        super().finish_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        try:
            super().shutdown_request(request)
        except (OSError, ValueError):  # a connection whose handshake failed is half gone
            with contextlib.suppress(OSError):
                request.close()


# -- basic auth --------------------------------------------------------------------------


def _import_bcrypt() -> ModuleType:
    try:
        import bcrypt
    except ImportError:
        raise WebConfigError(
            "basic_auth_users needs the bcrypt package: pip install bcrypt"
        ) from None
    return bcrypt


class BasicAuth:
    """WSGI middleware: `Authorization: Basic` checked against bcrypt hashes.

    Names are compared in constant time over every configured user, and an unknown user
    still costs one bcrypt check, so timing tells neither. A successful check is cached
    for `cache_ttl` seconds under the SHA-256 of user, hash and password (bounded to
    `cache_size` entries), so a scrape every 15 s does not pay bcrypt's ~0.1-0.3 s each
    time; failures are never cached.
    """

    def __init__(
        self,
        app: WSGIApp,
        users: Mapping[str, str | SecretStr],
        *,
        realm: str = REALM,
        cache_size: int = 256,
        cache_ttl: float = 600.0,
        exempt_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self._bcrypt = _import_bcrypt()
        self._users = [
            (name.encode("utf-8"), _secret(hashed).encode("ascii"))
            for name, hashed in users.items()
        ]
        self._challenge = f'Basic realm="{realm}"'
        self._exempt = frozenset(exempt_paths)
        self._cache: TTLCache[bytes, bool] = TTLCache(maxsize=cache_size, ttl=cache_ttl)
        self._lock = threading.Lock()
        # An unknown user is checked against this, so that it takes as long as a known one.
        cost = int(self._users[0][1][4:6]) if self._users else 10
        self._decoy = self._bcrypt.hashpw(b"decoy", self._bcrypt.gensalt(rounds=cost))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in self._exempt or self.authorized(
            environ.get("HTTP_AUTHORIZATION", "")
        ):
            return self.app(environ, start_response)
        body = b"Unauthorized.\n"
        start_response(
            "401 Unauthorized",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("WWW-Authenticate", self._challenge),
            ],
        )
        return [body]

    def authorized(self, header: str) -> bool:
        credentials = _basic_credentials(header)
        if credentials is None:
            return False
        user, password = credentials
        hashed = self._hash_of(user)
        key = hashlib.sha256(b"\0".join((user, hashed or b"", password))).digest()
        with self._lock:
            if hashed is not None and self._cache.get(key, False):
                return True
        try:
            matches = self._bcrypt.checkpw(password, hashed or self._decoy)
        except ValueError:  # a password over bcrypt's 72 bytes, a corrupt hash
            matches = False
        if not (matches and hashed is not None):
            return False
        with self._lock:
            self._cache[key] = True
        return True

    def _hash_of(self, user: bytes) -> bytes | None:
        """The user's hash; every name is compared, in constant time, whatever matches."""
        found: bytes | None = None
        for name, hashed in self._users:
            if hmac.compare_digest(name, user):
                found = hashed
        return found


def _secret(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _basic_credentials(header: str) -> tuple[bytes, bytes] | None:
    """(user, password) from `Basic base64(user:password)`, or None when unreadable."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    return (user, password) if colon else None


class Headers:
    """WSGI middleware adding the configured response headers to every answer."""

    def __init__(self, app: WSGIApp, headers: Mapping[str, str]) -> None:
        self.app = app
        self.headers = list(headers.items())

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            return start_response(status, [*headers, *self.headers], *exc_info)

        return self.app(environ, start)


def wrap_app(app: WSGIApp, config: WebConfig | None, **basic_auth: Any) -> WSGIApp:
    """`app` behind the config's basic auth and headers (401 answers get the headers too)."""
    if config is None:
        return app
    if config.basic_auth_users:
        app = BasicAuth(app, config.basic_auth_users, **basic_auth)
    headers = config.http_server_config.headers if config.http_server_config else {}
    if headers:
        app = Headers(app, headers)
    return app


__all__ = [
    "REALM",
    "BasicAuth",
    "HTTPServerConfig",
    "Headers",
    "TLSServerConfig",
    "TLSServerMixin",
    "WebConfig",
    "WebConfigError",
    "load_web_config",
    "ssl_context",
    "wrap_app",
]
