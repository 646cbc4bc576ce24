"""HTTP endpoints on prometheus_client's threading WSGI server.

`/metrics` (or the configured path) serves the renderer's bytes in the negotiated format,
gzip-compressed when asked; `/` is a landing page; `/-/healthy` answers while the process
lives; `/-/ready` once there is data fresh enough to serve.
"""

from __future__ import annotations

import html
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client.exposition import ThreadingWSGIServer

from exporter import __version__
from exporter.exposition import negotiate
from exporter.render import Renderer

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]


class MetricsApp:
    """The WSGI application: routing only; the work is in the renderer."""

    def __init__(
        self,
        renderer: Renderer,
        ready: Callable[[], bool],
        telemetry_path: str = "/metrics",
        description: str = "",
    ) -> None:
        self.renderer = renderer
        self.ready = ready
        self.telemetry_path = telemetry_path
        self.landing = _landing_page(telemetry_path, description)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", b"Only GET and HEAD.\n")
        if path == self.telemetry_path:
            return self._metrics(environ, start_response)
        if path == "/-/healthy":
            return _plain(start_response, "200 OK", b"OK\n")
        if path == "/-/ready":
            if self.ready():
                return _plain(start_response, "200 OK", b"Ready\n")
            return _plain(start_response, "503 Service Unavailable", b"Not ready: no fresh data.\n")
        if path == "/":
            return _send(start_response, "200 OK", "text/html; charset=utf-8", [self.landing])
        return _plain(start_response, "404 Not Found", b"Not found.\n")

    def _metrics(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = self.renderer.render(negotiate(environ.get("HTTP_ACCEPT")))
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            gz = self.renderer.gzip(body)
            return _send(start_response, "200 OK", body.fmt.content_type, [gz], gzip=True)
        # Two chunks: the cached static bytes are sent as they are, never copied.
        return _send(start_response, "200 OK", body.fmt.content_type, [body.static, body.dynamic])


def _send(
    start_response: StartResponse,
    status: str,
    content_type: str,
    chunks: list[bytes],
    gzip: bool = False,
) -> list[bytes]:
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(sum(len(c) for c in chunks))),
    ]
    if gzip:
        headers.append(("Content-Encoding", "gzip"))
    start_response(status, headers)
    return chunks


def _plain(start_response: StartResponse, status: str, text: bytes) -> list[bytes]:
    return _send(start_response, status, "text/plain; charset=utf-8", [text])


def _landing_page(telemetry_path: str, description: str) -> bytes:
    path = html.escape(telemetry_path)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>ModelArts exporter</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:2em auto;color:#222}}
code{{background:#f4f4f4;padding:0 .2em}}</style></head>
<body><h1>ModelArts exporter</h1>
<p>Prometheus exporter for Huawei Cloud ModelArts notebook instances, version
<code>{html.escape(__version__)}</code>.</p>
<p>{html.escape(description)}</p>
<ul><li><a href="{path}">Metrics</a></li>
<li><a href="/-/healthy">Health</a></li><li><a href="/-/ready">Readiness</a></li></ul>
</body></html>
""".encode()


class _Handler(WSGIRequestHandler):
    """Logs requests at debug level instead of printing them to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", format % args)


class _Server(ThreadingWSGIServer):
    # Non-daemon request threads, joined on close: an in-flight scrape finishes on SIGTERM.
    daemon_threads = False
    block_on_close = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class HttpServer:
    """Serves `app` on host:port in a background thread until `stop()`."""

    def __init__(self, app: MetricsApp, host: str, port: int) -> None:
        server_class = _Server6 if ":" in host else _Server
        self._server = make_server(host, port, app, server_class, handler_class=_Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
