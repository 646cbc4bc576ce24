"""The HTTP side: one request handler class, routed by method and path (`ROUTES`).

Besides ModelArts: IAM (password tokens, OIDC federation, temporary keys, projects), STS
(assume-with-oidc), the ECS metadata service (session tokens, keys) and the CCE pod
identity agent, all on the same host, at the real services' paths.

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
IAM_ID_TOKEN_PATH = "/v3.0/OS-AUTH/id-token/tokens"
IAM_SECURITY_TOKENS_PATH = "/v3.0/OS-CREDENTIAL/securitytokens"
IAM_PROJECTS_PATH = "/v3/projects"
STS_OIDC_PATH = "/v5/agencies/assume-with-oidc"
METADATA_PATH = "/openstack/latest/securitykey"
METADATA_TOKEN_PATH = "/meta-data/latest/api/token"
POD_IDENTITY_PATH = "/v1/pod-identity/credentials"  # the agent's URL is given to the pod
# The API gateway's answer for a path it does not publish (its error code table, APIG.0101).
NOT_PUBLISHED = "The API does not exist or has not been published in the environment."
DEMANAGER = "demanager/instances"
FLAVORS = "notebooks/flavors"


def _api(path: str) -> re.Pattern[str]:
    return re.compile(rf"^/v1/(?P<project>[^/]+)/(?P<api>{path})/?$")


class Handler(BaseHTTPRequestHandler):
    """One request to the simulated services."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the real gateway
    # Headers and body are two writes: with Nagle's algorithm on, the body waits for the
    # client's delayed ACK of the headers (~40 ms a response on Linux), which made every
    # page cost 40 ms and the benchmark measure the simulator instead of the exporter.
    disable_nagle_algorithm = True
    sim: Simulator  # set on the subclass each Simulator makes
    ROUTES: ClassVar[dict[str, tuple[tuple[re.Pattern[str], str], ...]]] = {
        "GET": (
            (re.compile(METADATA_PATH), "metadata"),
            (re.compile(IAM_PROJECTS_PATH), "iam_projects"),
            (_api(DEMANAGER), "demanager"),
            (_api(FLAVORS), "flavors"),
            (_api("notebooks/all"), "notebooks_all"),
            (_api("notebooks"), "notebooks"),
        ),
        "POST": (
            (re.compile(IAM_TOKENS_PATH), "iam_token"),
            (re.compile(IAM_ID_TOKEN_PATH), "iam_id_token"),
            (re.compile(IAM_SECURITY_TOKENS_PATH), "iam_security_token"),
            (re.compile(STS_OIDC_PATH), "sts_oidc"),
            (re.compile(POD_IDENTITY_PATH), "pod_identity"),
        ),
        "PUT": ((re.compile(METADATA_TOKEN_PATH), "metadata_token"),),
    }

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("simulator %s", format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

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
        status, payload = self.sim.identity.metadata_keys(dict(self.headers.items()))
        self._send(status, payload)

    def metadata_token(self, route: re.Match[str], params: dict[str, str], body: bytes) -> None:
        with self.sim._lock:
            self.sim.stats.metadata_token_requests += 1
        status, payload = self.sim.identity.issue_metadata_token(dict(self.headers.items()))
        self._send(status, payload, content_type="text/plain")

    def iam_token(self, route: re.Match[str], params: dict[str, str], body: bytes) -> None:
        with self.sim._lock:
            self.sim.stats.iam_requests += 1
        status, headers, payload = self.sim.issue_token(body)
        self._send(status, payload, uuid.uuid4().hex, headers)

    def iam_id_token(self, route: re.Match[str], params: dict[str, str], body: bytes) -> None:
        with self.sim._lock:
            self.sim.stats.iam_requests += 1
        headers = dict(self.headers.items())
        status, answer_headers, payload = self.sim.identity.issue_token_by_id_token(headers, body)
        self._send(status, payload, uuid.uuid4().hex, answer_headers)

    def iam_security_token(self, route: re.Match[str], params: dict[str, str], body: bytes) -> None:
        with self.sim._lock:
            self.sim.stats.iam_requests += 1
        headers = dict(self.headers.items())
        status, answer_headers, payload = self.sim.identity.issue_security_token(headers, body)
        self._send(status, payload, uuid.uuid4().hex, answer_headers)

    def iam_projects(self, route: re.Match[str], params: dict[str, str], body: bytes) -> None:
        with self.sim._lock:
            self.sim.stats.iam_requests += 1
        identity = self.sim.identity
        status, payload = identity.list_projects("GET", self.path, dict(self.headers.items()))
        self._send(status, payload, uuid.uuid4().hex)

    def sts_oidc(self, route: re.Match[str], params: dict[str, str], body: bytes) -> None:
        with self.sim._lock:
            self.sim.stats.sts_requests += 1
        status, payload = self.sim.identity.assume_agency_with_oidc(body)
        self._send(status, payload, uuid.uuid4().hex)

    def pod_identity(self, route: re.Match[str], params: dict[str, str], body: bytes) -> None:
        with self.sim._lock:
            self.sim.stats.pod_identity_requests += 1
        status, payload = self.sim.identity.pod_identity_keys(dict(self.headers.items()))
        self._send(status, payload)

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
                if params.get("offset", "0") == "0" and params.get("feature", "NOTEBOOK") in (
                    "",
                    "NOTEBOOK",
                ):
                    stats.first_pages[api] = stats.first_pages.get(api, 0) + 1
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
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if request_id:
            self.send_header("X-Request-Id", request_id)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(OSError):  # the client may hang up early
            self.wfile.write(body)
