"""`python -m exporter.http.healthcheck`: the image's HEALTHCHECK, with or without TLS.

It asks `/-/healthy` where the exporter serves it: the listen address and the web config
file are read as the exporter reads them, from its flags, else its environment variables
(`MODELARTS_EXPORTER_WEB_LISTEN_ADDRESS`, `MODELARTS_EXPORTER_WEB_CONFIG_FILE`), else the
defaults. The flags are those given to this module, or, given none, those of the
container's exporter: PID 1's command line, when it runs `modelarts-exporter` (directly,
as the image's ENTRYPOINT, or under `docker run --init`), so `docker run IMAGE
--web.listen-address=:9000` is checked on port 9000.

With a `tls_server_config` it speaks HTTPS without verifying the certificate (it asks
its own process on loopback; a self-signed certificate is fine). When the config requires
client certificates, which this check does not have, a TCP connection to the port is the
check, as the chart's probes do then. Exit status 0: healthy; 1: not (Docker's meaning),
with one line saying why.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from exporter.config.command_line import build_parser
from exporter.config.fields import parse_listen_address
from exporter.config.settings import DEFAULT_LISTEN_ADDRESS, setting_names
from exporter.http.webconfig import WebConfigError, load_web_config

PATH = "/-/healthy"
TIMEOUT = 4.0  # below the HEALTHCHECK's --timeout
PROGRAM = "modelarts-exporter"
PID1_CMDLINE = Path("/proc/1/cmdline")
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1"}


@dataclass(frozen=True)
class Target:
    """Where and how to ask: `url` for HTTP(S), `tcp_only` when a client certificate is
    required (then only the port is checked)."""

    url: str
    host: str
    port: int
    tls: bool
    tcp_only: bool


def exporter_args(cmdline: bytes) -> list[str] | None:
    """The arguments after `modelarts-exporter` (or `python -m exporter`) in a NUL-separated
    command line; None when the command line is not the exporter's."""
    argv = [part.decode(errors="replace") for part in cmdline.split(b"\0")]
    if argv and argv[-1] == "":
        argv.pop()
    for i, arg in enumerate(argv):
        if Path(arg).name == PROGRAM:
            return argv[i + 1 :]
        if arg == "-m" and argv[i + 1 : i + 2] == ["exporter"]:
            return argv[i + 2 :]
    return None


def _pid1_args() -> list[str]:
    try:
        return exporter_args(PID1_CMDLINE.read_bytes()) or []
    except OSError:
        return []


def _setting(flags: dict[str, object], name: str, default: str) -> str:
    """A flag, else its environment variable, else the default: the exporter's order."""
    if name in flags:
        return str(flags[name])
    return os.environ.get(setting_names(name)[1], default)


def target(args: Sequence[str]) -> Target:
    """Where the exporter with these flags (and this environment) serves /-/healthy.
    Raises ValueError or WebConfigError when its settings are wrong."""
    try:
        flags, _ = build_parser().parse_known_args(list(args))
    except SystemExit:  # argparse has printed why (e.g. a flag without its value)
        raise ValueError("cannot read the exporter's flags") from None
    values = vars(flags)
    host, port = parse_listen_address(
        _setting(values, "web_listen_address", DEFAULT_LISTEN_ADDRESS)
    )
    host = _WILDCARDS.get(host, host)
    config_file = _setting(values, "web_config_file", "")
    tls = load_web_config(config_file).tls_server_config if config_file else None
    tcp_only = tls is not None and tls.client_auth_type == "RequireAndVerifyClientCert"
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    scheme = "https" if tls else "http"
    return Target(f"{scheme}://{netloc}{PATH}", host, port, tls is not None, tcp_only)


def check(where: Target, timeout: float = TIMEOUT) -> str:
    """What answered; raises OSError (URLError, HTTPError included) when nothing healthy did."""
    if where.tcp_only:
        with socket.create_connection((where.host, where.port), timeout=timeout):
            return f"{where.host}:{where.port} accepts connections (client certificates required)"
    context = None
    if where.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False  # its own process on loopback: any certificate
        context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(where.url, timeout=timeout, context=context) as response:
        return f"{where.url}: {response.status}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        where = target(args or _pid1_args())
    except (ValueError, WebConfigError) as err:
        print(f"healthcheck: {err}", file=sys.stderr)
        return 1
    try:
        print(check(where))
    except urllib.error.HTTPError as err:
        print(f"healthcheck: {where.url}: {err.code}", file=sys.stderr)
        return 1
    except (OSError, ssl.SSLError) as err:
        reason = getattr(err, "reason", None) or err
        print(f"healthcheck: {where.url}: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
