"""HTTP endpoints, on the bounded server of `connections.py`.

`/metrics` (or the configured path) serves the renderer's bytes in the negotiated format,
gzip-compressed when asked, with the HTTP server's own counters, and tells the renderer
which host asked, whose next scrape it prepares ahead (`render.py`); `/` is a landing page;
`/-/healthy` answers while the process lives; `/-/ready` once there is data fresh enough
to serve; `POST /-/reload` re-reads the targets file when the lifecycle API is enabled
(`--web.enable-lifecycle`, as in Prometheus).
"""

from __future__ import annotations

import dataclasses
import html
import logging
import ssl
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from exporter import __version__
from exporter.exposition.ahead import Ahead
from exporter.exposition.formats import negotiate
from exporter.exposition.render import Body, Renderer
from exporter.http.connection_stats import ConnectionStats
from exporter.http.connections import ConnectionServer, Limits
from exporter.http.webconfig import WebConfig, wrap_app
from exporter.pipeline.targets import TargetSet

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]


class MetricsApp:
    """The WSGI application: routing only; the work is in the targets and renderers."""

    def __init__(
        self,
        targets: TargetSet,
        telemetry_path: str = "/metrics",
        description: str = "",
        reload: Callable[[], str | None] | None = None,
        lifecycle: bool = False,
    ) -> None:
        self.targets = targets
        self.telemetry_path = telemetry_path
        self.reload = reload  # returns None when done, else what is wrong
        self.lifecycle = lifecycle  # POST /-/reload accepted
        self.connections = ConnectionStats()  # the server's counters, served with the metrics
        self.landing = _landing_page(telemetry_path, description)
        # Each scraper's next scrape is predicted, its parts made ahead (render.py): one
        # scheduler for /metrics and every /probe target.
        self.ahead = Ahead()
        self.renderer = Renderer(targets.statuses, peek=targets.peek, ahead=self.ahead)
        self._probes: dict[str, Renderer] = {}  # one per target, for /probe?target=NAME

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/-/reload":
            return self._reload(method, start_response)
        if method not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", b"Only GET and HEAD.\n")
        if path == self.telemetry_path:
            return self._metrics(self.renderer, environ, start_response)
        if path == "/probe":
            return self._probe(environ, start_response)
        if path == "/-/healthy":
            return _plain(start_response, "200 OK", b"OK\n")
        if path == "/-/ready":
            if self.targets.ready():
                return _plain(start_response, "200 OK", b"Ready\n")
            return _plain(start_response, "503 Service Unavailable", b"Not ready: no fresh data.\n")
        if path == "/":
            return _send(start_response, "200 OK", "text/html; charset=utf-8", [self.landing])
        return _plain(start_response, "404 Not Found", b"Not found.\n")

    def _probe(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Only one target's metrics, for Prometheus to fan out with relabelling."""
        name = parse_qs(environ.get("QUERY_STRING", "")).get("target", [""])[0]
        if not name:
            return _plain(start_response, "400 Bad Request", b"The target parameter is missing.\n")
        if name not in self.targets.names():
            return _plain(start_response, "404 Not Found", f"Unknown target {name!r}.\n".encode())
        renderer = self._probes.get(name)
        if renderer is None:
            renderer = self._probes[name] = Renderer(
                lambda: self.targets.statuses([name]),
                peek=lambda: self.targets.peek([name]),
                ahead=self.ahead,
            )
        return self._metrics(renderer, environ, start_response)

    def _reload(self, method: str, start_response: StartResponse) -> Iterable[bytes]:
        if method != "POST":
            return _plain(start_response, "405 Method Not Allowed", b"Only POST.\n")
        if not self.lifecycle:  # Prometheus's answer when --web.enable-lifecycle is not set
            return _plain(
                start_response,
                "403 Forbidden",
                b"Lifecycle API is not enabled: start with --web.enable-lifecycle "
                b"(SIGHUP reloads without it).\n",
            )
        if self.reload is None:
            return _plain(start_response, "400 Bad Request", b"No --config.file to reload.\n")
        problem = self.reload()
        if problem is not None:
            return _plain(start_response, "400 Bad Request", f"{problem}\n".encode())
        names = set(self.targets.names())
        self._probes = {n: r for n, r in self._probes.items() if n in names}
        return _plain(start_response, "200 OK", b"Reloaded.\n")

    def _metrics(
        self, renderer: Renderer, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        body = self._with_connections(renderer.render(negotiate(environ.get("HTTP_ACCEPT"))))
        gzip = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
        # The parts are sent as they are, cached bytes never copied.
        chunks = renderer.gzip(body) if gzip else body.chunks()
        renderer.served(body, environ.get("REMOTE_ADDR", ""), gzip)  # its next one: ahead
        return _send(start_response, "200 OK", body.fmt.content_type, chunks, gzip=gzip)

    def _with_connections(self, body: Body) -> Body:
        """The HTTP server's families added to the per-scrape part, before `# EOF`."""
        fmt = body.fmt
        exporter = body.exporter.removesuffix(fmt.eof)
        return dataclasses.replace(
            body, exporter=exporter + self.connections.exposition(fmt) + fmt.eof
        )


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
<li><a href="/-/healthy">Health</a></li><li><a href="/-/ready">Readiness</a></li>
<li><code>/probe?target=NAME</code>: one target's metrics</li></ul>
</body></html>
""".encode()


UNPROTECTED = ("/-/healthy", "/-/ready")  # for kubelet probes, which carry no credentials


class HttpServer:
    """Serves `app` on host:port in a background thread until `stop()`, over TLS and
    behind basic auth when the web config says so, within `limits` (the probe paths
    have workers of their own)."""

    def __init__(
        self,
        app: MetricsApp,
        host: str,
        port: int,
        web_config: WebConfig | None = None,
        tls: ssl.SSLContext | None = None,
        limits: Limits | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        wsgi = wrap_app(app, web_config, exempt_paths=UNPROTECTED)
        self._server = ConnectionServer(
            host,
            port,
            wsgi,
            tls=tls,
            limits=limits or Limits(),
            stats=app.connections,
            probe_paths=UNPROTECTED,
        )
        self.port = self._server.server_address[1]
        self.failed = False  # the server's loop ended on an error (logged)
        self._on_failure = on_failure
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        try:
            self._server.serve_forever()
        except Exception:
            self.failed = True
            if self._on_failure is not None:
                self._on_failure()

    def stop(self) -> None:
        """Returns within the limits' shutdown grace (and a second), whatever the clients."""
        self._server.stop()
