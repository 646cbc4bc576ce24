"""The HTTP side: one request handler class, routed by method and path (`ROUTES`).

Every ModelArts call goes the gateway's way: the API must exist (404 APIG.0101 if not, as
for a retired historical API), the request must be signed or carry a valid token, an
`X-Project-Id` must name the path's project (401 APIG.0301), the project must be the
simulator's (403), and then an injected fault may answer instead of the API.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from exporter.simulator.iam import signed_headers
from exporter.simulator.pages import Answer, error

if TYPE_CHECKING:
    from exporter.simulator.api import Fault, Simulator

log = logging.getLogger(__name__)

IAM_TOKENS_PATH = "/v3/auth/tokens"
METADATA_PATH = "/openstack/latest/securitykey"
# The API gateway's answer for a path it does not publish (its error code table, APIG.0101).
NOT_PUBLISHED = "The API does not exist or has not been published in the environment."
DEMANAGER = "demanager/instances"
FLAVORS = "notebooks/flavors"


def _api(path: str) -> re.Pattern[str]:
    return re.compile(rf"^/v1/(?P<project>[^/]+)/(?P<api>{path})/?$")


class Handler(BaseHTTPRequestHandler):
    """One request to the simulated services."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the real gateway
    sim: Simulator  # set on the subclass each Simulator makes
    ROUTES: ClassVar[dict[str, tuple[tuple[re.Pattern[str], str], ...]]] = {
        "GET": (
            (re.compile(METADATA_PATH), "metadata"),
            (_api(DEMANAGER), "demanager"),
            (_api(FLAVORS), "flavors"),
            (_api("notebooks/all"), "notebooks_all"),
            (_api("notebooks"), "notebooks"),
        ),
        "POST": ((re.compile(IAM_TOKENS_PATH), "iam_token"),),
    }

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("simulator %s", format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        for pattern, name in self.ROUTES[method]:
            route = pattern.fullmatch(parts.path)
            if route is not None:
                params = dict(parse_qsl(parts.query, keep_blank_values=True))
                getattr(self, name)(route, params, body)
                return
        self._not_published()

    # -- routes ---------------------------------------------------------------------------

    def metadata(self, route: re.Match[str], params: dict[str, str], body: bytes) -> None:
        with self.sim._lock:
            self.sim.stats.metadata_requests += 1
        self._send(200, self.sim.issue_temporary_keys())

    def iam_token(self, route: re.Match[str], params: dict[str, str], body: bytes) -> None:
        with self.sim._lock:
            self.sim.stats.iam_requests += 1
        status, headers, payload = self.sim.issue_token(body)
        self._send(status, payload, uuid.uuid4().hex, headers)

    def demanager(self, route: re.Match[str], params: dict[str, str], body: bytes) -> None:
        if not self.sim.demanager:  # retired in this region: the gateway knows no such API
            self._not_published()
            return
        self._serve(route, params, body, self.sim.pages.demanager)

    def notebooks(self, route: re.Match[str], params: dict[str, str], body: bytes) -> None:
        pages = self.sim.pages
        self._serve(route, params, body, lambda p: pages.notebooks(p, every_user=False))

    def notebooks_all(self, route: re.Match[str], params: dict[str, str], body: bytes) -> None:
        pages = self.sim.pages
        self._serve(route, params, body, lambda p: pages.notebooks(p, every_user=True))

    def flavors(self, route: re.Match[str], params: dict[str, str], body: bytes) -> None:
        self._serve(route, params, body, self.sim.pages.flavors)

    # -- the gateway ----------------------------------------------------------------------

    def _serve(
        self,
        route: re.Match[str],
        params: dict[str, str],
        body: bytes,
        answer: Callable[[dict[str, str]], Answer],
    ) -> None:
        sim = self.sim
        api = route["api"]
        request_id = uuid.uuid4().hex
        headers = dict(self.headers.items())
        problem = sim.authenticate("GET", self.path, headers, body)
        problem = problem or sim.identity.project_mismatch(headers, route["project"])
        signed = signed_headers(headers)
        with sim._lock:
            stats = sim.stats
            stats.paths[api] = stats.paths.get(api, 0) + 1
            if api == FLAVORS:
                stats.flavor_requests += 1
            else:
                stats.requests += 1
                if params.get("offset", "0") == "0":
                    stats.listings += 1
            if signed is not None and "x-project-id" not in signed:
                stats.unsigned_project_id += 1
            if problem:
                stats.rejected += 1
        if problem:
            self._send(problem[0], error(problem[1], problem[2], request_id), request_id)
            return
        if route["project"] != sim.project_id:
            self._send(403, error("ModelArts.0203", "No permission for this project.", request_id))
            return
        fault = sim._next_fault(api)
        if fault is not None and fault.kind != "slow":
            self._fault(fault, api, lambda: answer(params)[1], request_id)
            return
        time.sleep(sim.latency + (fault.delay if fault else 0.0))
        status, payload = answer(params)
        self._send(status, payload, request_id)

    def _not_published(self) -> None:
        with self.sim._lock:
            self.sim.stats.not_found += 1
        request_id = uuid.uuid4().hex
        self._send(404, error("APIG.0101", NOT_PUBLISHED, request_id), request_id)

    # -- answers --------------------------------------------------------------------------

    def _fault(self, fault: Fault, api: str, good: Callable[[], bytes], request_id: str) -> None:
        historical = api == DEMANAGER
        if fault.kind == "hang":
            time.sleep(fault.delay or 30.0)
            self.close_connection = True
            return
        if fault.kind == "endless":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            deadline = time.monotonic() + (fault.delay or 30.0)
            with contextlib.suppress(OSError):  # the client gave up: that is the point
                self.wfile.write(
                    b'{"total_count":1,"instances":[' if historical else b'{"current":0,"data":['
                )
                while time.monotonic() < deadline:
                    self.wfile.write(b" " * 65536)
            return
        if fault.kind in ("malformed", "truncated", "not_json"):
            if fault.kind == "truncated":
                whole = good()
                payload = whole[: len(whole) // 2]
            elif fault.kind == "not_json":
                payload = b"<html><body>Bad Gateway</body></html>"
            elif historical:
                payload = b'{"total_count": 1, "instances": {"id": 42}}'
            else:
                payload = b'{"current": 0, "data": {"id": 42}, "pages": 1, "size": 10, "total": 1}'
            self._send(200, fault.body or payload, request_id)
            return
        body = (
            fault.body
            if fault.body is not None
            else error(
                {429: "APIG.0308", 401: "APIG.0301"}.get(fault.status, "ModelArts.0001"),
                "simulated failure",
                request_id,
            )
        )
        self._send(fault.status, body, request_id, fault.headers)

    def _send(
        self,
        status: int,
        body: bytes,
        request_id: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if request_id:
            self.send_header("X-Request-Id", request_id)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(OSError):  # the client may hang up early
            self.wfile.write(body)
