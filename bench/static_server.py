"""The limit: fixed exposition bytes on the exporter's kind of server, nothing else.

`python -m bench.static_server DIR` serves the bodies the benchmark saved in DIR (one per
variant: `text`, `openmetrics`, `prometheus` = OpenMetrics gzip-compressed) on
prometheus_client's `ThreadingWSGIServer`, picking the variant from `Accept` and
`Accept-Encoding` as the exporter does, and prints its port. No exporter serving the same
bytes over the same server can be faster than this.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client.exposition import ThreadingWSGIServer


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def load(directory: Path) -> dict[tuple[bool, bool], tuple[list[tuple[str, str]], bytes]]:
    """(openmetrics, gzip) → (headers, body), from the files `save` wrote."""
    meta = json.loads((directory / "variants.json").read_text())
    bodies = {}
    for name, variant in meta.items():
        body = (directory / f"{name}.bin").read_bytes()
        headers = [("Content-Type", variant["content_type"]), ("Content-Length", str(len(body)))]
        if variant["gzip"]:
            headers.append(("Content-Encoding", "gzip"))
        bodies[(variant["openmetrics"], variant["gzip"])] = (headers, body)
    return bodies


def save(directory: Path, variants: dict[str, dict[str, Any]], bodies: dict[str, bytes]) -> None:
    """Write the bodies and their headers for `load` (variants: name → content_type, ...)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in bodies.items():
        (directory / f"{name}.bin").write_bytes(body)
    (directory / "variants.json").write_text(json.dumps(variants))


def app_for(
    bodies: dict[tuple[bool, bool], tuple[list[tuple[str, str]], bytes]],
) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        openmetrics = "application/openmetrics-text" in environ.get("HTTP_ACCEPT", "")
        gzip = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
        found = bodies.get((openmetrics, gzip))
        if found is None:
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        headers, body = found
        start_response("200 OK", headers)
        return [body]

    return app


def main(argv: list[str]) -> int:
    bodies = load(Path(argv[0]))
    server = make_server(
        "127.0.0.1", 0, app_for(bodies), ThreadingWSGIServer, handler_class=_QuietHandler
    )
    print(server.server_address[1], flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
