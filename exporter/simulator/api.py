"""The ModelArts list API, simulated over HTTP on loopback, with faults on demand.

It checks AK/SK signatures exactly as the gateway does (and X-Auth-Token for token
auth), issues IAM tokens and ECS temporary keys as IAM and the metadata service do,
serves the fleet with the real pagination and filters, and can be told to fail: the next
N requests, or a random share of them, answer with a 5xx, a 429, a malformed or
truncated body, a body that never ends, or not at all. `--demo`, the tests and the
benchmark all use it.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from exporter.modelarts.auth.signer import (
    DATE_FORMAT,
    canonical_query,
    canonical_request,
    signature,
)
from exporter.simulator.fleet import Fleet

log = logging.getLogger(__name__)

DEMO_PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
DEMO_AK = "DEMOAKSIMULATOR00001"
DEMO_SK = "demo-secret-key-not-a-real-one-0000000000"
DEMO_IAM_USER = "demo-user"
DEMO_IAM_LOGIN = ("demo-password-0000", "demo-domain")  # password, domain
CALLER = "ops_dev_env"  # the user the credentials belong to (what show_self=true lists)
MAX_CLOCK_SKEW = 15 * 60
IAM_TOKENS_PATH = "/v3/auth/tokens"
METADATA_PATH = "/openstack/latest/securitykey"
_LIST_PATH = re.compile(r"^/v1/(?P<project>[^/]+)/(?P<api>demanager/instances|notebooks)/?$")
_AUTH = re.compile(r"SDK-HMAC-SHA256 Access=([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]+)")


@dataclass
class Fault:
    """What to answer instead of the list: see the kinds below."""

    kind: str = "status"  # status | malformed | truncated | not_json | hang | endless | slow
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # default: an error document in the gateway's shape
    delay: float = 0.0  # for hang (how long to hold) and slow (then answer normally)


@dataclass
class Stats:
    requests: int = 0  # every request to the list path
    listings: int = 0  # requests for the first page: one per exporter refresh
    rejected: int = 0  # signature or token failures
    iam_requests: int = 0
    metadata_requests: int = 0


class Simulator:
    """The API on 127.0.0.1; `url` is its base. Use as a context manager or start/stop."""

    def __init__(
        self,
        fleet: Fleet | None = None,
        *,
        project_id: str = DEMO_PROJECT_ID,
        ak: str = DEMO_AK,
        sk: str = DEMO_SK,
        security_token: str | None = None,
        iam_users: dict[str, tuple[str, str]] | None = None,
        credential_lifetime: float = 86400.0,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        seed: int = 7,
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fleet = fleet or Fleet(seed=seed, clock=clock)
        self.project_id = project_id
        self.ak, self.sk, self.security_token = ak, sk, security_token
        self.iam_users = iam_users if iam_users is not None else {DEMO_IAM_USER: DEMO_IAM_LOGIN}
        self.credential_lifetime = credential_lifetime
        self.tokens: dict[str, float] = {}  # IAM token → expiry
        self.temporary_keys: dict[str, tuple[str, str, float]] = {}  # ak → sk, token, expiry
        self.latency = latency
        self.fault_rate = fault_rate
        self.clock = clock
        self.stats = Stats()
        self._rng = random.Random(seed)
        self._faults: list[tuple[Fault, int | None]] = []
        self._lock = threading.Lock()
        self._page_cache: dict[tuple[Any, ...], list[bytes]] = {}
        handler = type("Handler", (_Handler,), {"sim": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Simulator:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults -------------------------------------------------------------------------

    def inject(self, fault: Fault, times: int | None = 1) -> None:
        """Answer the next `times` list requests with `fault` (None: until `clear()`)."""
        with self._lock:
            self._faults.append((fault, times))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                fault, times = self._faults[0]
                if times is not None:
                    if times <= 1:
                        self._faults.pop(0)
                    else:
                        self._faults[0] = (fault, times - 1)
                return fault
            if self.fault_rate and self._rng.random() < self.fault_rate:
                return Fault(status=self._rng.choice((429, 500, 503)), headers={"Retry-After": "1"})
        return None

    # -- the API ------------------------------------------------------------------------

    def authenticate(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, str] | None:
        """None if the request is properly signed (or carries a valid token), else the error."""
        lowered = {k.lower(): v for k, v in headers.items()}
        token = lowered.get("x-auth-token")
        if token is not None:
            if self.tokens.get(token, 0.0) > self.clock():
                return None
            return (401, "APIG.0301", "Incorrect IAM authentication information: token expires")
        match = _AUTH.fullmatch(lowered.get("authorization", ""))
        if not match:
            return (
                401,
                "APIG.0301",
                "Incorrect IAM authentication information: Authorization header missing",
            )
        access, signed_names, sig = match.groups()
        keys = {self.ak: (self.sk, self.security_token, float("inf")), **self.temporary_keys}
        if access not in keys or keys[access][2] <= self.clock():
            return (401, "APIG.0301", "Incorrect IAM authentication information: ak not exist")
        secret, security_token, _ = keys[access]
        if security_token is not None and lowered.get("x-security-token") != security_token:
            return (
                401,
                "APIG.0301",
                "Incorrect IAM authentication information: invalid security token",
            )
        sdk_date = lowered.get("x-sdk-date", "")
        try:
            signed_at = datetime.strptime(sdk_date, DATE_FORMAT).replace(tzinfo=timezone.utc)
        except ValueError:
            return (401, "APIG.0301", "Incorrect IAM authentication information: bad X-Sdk-Date")
        if abs(signed_at.timestamp() - self.clock()) > MAX_CLOCK_SKEW:
            return (401, "APIG.0301", "Incorrect IAM authentication information: request expired")
        names = signed_names.split(";")
        if any(name not in lowered for name in names):
            return (401, "APIG.0301", "Incorrect IAM authentication information: header missing")
        parts = urlsplit(raw_path)
        query = canonical_query(parse_qsl(parts.query, keep_blank_values=True))
        canonical = canonical_request(method, parts.path, query, lowered, names, body)
        if not hmac.compare_digest(signature(secret, sdk_date, canonical), sig):
            return (
                401,
                "APIG.0301",
                "Incorrect IAM authentication information: verify aksk signature fail",
            )
        return None

    def issue_token(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """`POST /v3/auth/tokens` with a password: a project-scoped token, or 401."""
        try:
            auth = json.loads(body)["auth"]
            user = auth["identity"]["password"]["user"]
            login = (user["name"], user["password"], user["domain"]["name"])
            project = auth["scope"]["project"]["id"]
        except (ValueError, KeyError, TypeError):
            return 400, {}, _iam_error(400, "Bad Request", "The request body is invalid.")
        if self.iam_users.get(login[0]) != login[1:]:
            return 401, {}, _iam_error(401, "Unauthorized", "The username or password is wrong.")
        if project != self.project_id:
            return 401, {}, _iam_error(401, "Unauthorized", "The project does not exist.")
        token = "MIIT" + uuid.uuid4().hex * 4
        expires = self.clock() + self.credential_lifetime
        with self._lock:
            self.tokens[token] = expires
        doc = {"token": {"expires_at": _iso(expires), "project": {"id": project}}}
        return 201, {"X-Subject-Token": token}, json.dumps(doc).encode()

    def issue_temporary_keys(self) -> bytes:
        """The ECS metadata service: temporary keys of the VM's agency."""
        access = "TMP" + uuid.uuid4().hex[:17].upper()
        secret, token = uuid.uuid4().hex * 2, "gQpo" + uuid.uuid4().hex * 8
        expires = self.clock() + self.credential_lifetime
        with self._lock:
            self.temporary_keys[access] = (secret, token, expires)
        credential = {"access": access, "secret": secret, "securitytoken": token}
        return json.dumps({"credential": {**credential, "expires_at": _iso(expires)}}).encode()

    def list_page(self, params: dict[str, str]) -> tuple[int, bytes]:
        if params.get("de_type") != "Notebook":
            return 400, _error("ModelArts.0104", "de_type must be Notebook.")
        try:
            offset = int(params.get("offset", "0"))
            limit = int(params.get("limit", "0"))
        except ValueError:
            return 400, _error("ModelArts.0104", "offset and limit must be integers.")
        if offset < 0 or limit < 0:
            return 400, _error("ModelArts.0104", "offset and limit must not be negative.")
        records = self._records(params, "demanager")
        chosen = records[offset : offset + limit] if limit else records[offset:]
        body = b'{"total_count":%d,"instances":[%s]}' % (len(records), b",".join(chosen))
        return 200, body

    def notebooks_page(self, params: dict[str, str]) -> tuple[int, bytes]:
        """The newer API: `offset` is a page number, `limit` one of 10, 20, 50."""
        try:
            page, limit = int(params.get("offset", "0")), int(params.get("limit", "10"))
        except ValueError:
            return 400, _error("ModelArts.0104", "offset and limit must be integers.")
        if page < 0 or limit not in (10, 20, 50):
            return 400, _error("ModelArts.0104", "limit must be 10, 20 or 50.")
        records = self._records(params, "notebooks")
        chosen = records[page * limit : (page + 1) * limit]
        pages = -(-len(records) // limit)
        body = b'{"current":%d,"data":[%s],"pages":%d,"size":%d,"total":%d}' % (
            page,
            b",".join(chosen),
            pages,
            limit,
            len(records),
        )
        return 200, body

    def _records(self, params: dict[str, str], api: str) -> list[bytes]:
        """The filtered, sorted fleet as JSON records, cached while the fleet stands still."""
        now = self.clock()
        self.fleet.advance(now)
        moment = int(now) if self.fleet.evolve else 0
        filters = sorted((k, v) for k, v in params.items() if k not in ("offset", "limit"))
        key = (api, self.fleet.version, moment, *filters)
        with self._lock:
            cached = self._page_cache.get(key)
        if cached is not None:
            return cached
        if api == "notebooks":
            records = self.fleet.records_v2(now)
            if params.get("pool_id"):
                records = [r for r in records if _dig(r, ("pool", "id")) == params["pool_id"]]
            return self._cache(key, sorted(records, key=lambda r: r["name"]))
        records = self.fleet.records(now)
        if params.get("show_self", "true") != "false":
            records = [r for r in records if r["user"]["name"] == CALLER]
        for name, path in (("status", ("status",)), ("pool_id", ("pool", "id"))):
            if params.get(name):
                records = [r for r in records if _dig(r, path) == params[name]]
        records = [r for r in records if r["workspace"]["id"] == params.get("workspace_id", "0")]
        sort_key = params.get("sortby", "name")
        records.sort(
            key=lambda r: (
                int(r["creation_timestamp"]) if sort_key == "creation_timestamp" else r["name"]
            ),
            reverse=params.get("order") == "desc",
        )
        return self._cache(key, records)

    def _cache(self, key: tuple[Any, ...], records: list[dict[str, Any]]) -> list[bytes]:
        encoded = [json.dumps(r, separators=(",", ":")).encode() for r in records]
        with self._lock:
            if len(self._page_cache) > 16:
                self._page_cache.clear()
            self._page_cache[key] = encoded
        return encoded


def _dig(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = record
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iam_error(code: int, title: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "title": title, "message": message}}).encode()


def _error(code: str, message: str, request_id: str | None = None) -> bytes:
    return json.dumps(
        {"error_code": code, "error_msg": message, "request_id": request_id or uuid.uuid4().hex}
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    """One request to the simulated services, routed by method and path (`ROUTES`)."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the real gateway
    sim: Simulator  # set on the subclass each Simulator makes
    ROUTES: ClassVar[dict[str, tuple[tuple[re.Pattern[str], str], ...]]] = {
        "GET": ((re.compile(METADATA_PATH), "metadata"), (_LIST_PATH, "list_notebooks")),
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
        self._send(404, _error("APIG.0101", "The API does not exist or has not been published."))

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

    def list_notebooks(self, route: re.Match[str], params: dict[str, str], body: bytes) -> None:
        sim = self.sim
        request_id = uuid.uuid4().hex
        problem = sim.authenticate("GET", self.path, dict(self.headers.items()), body)
        with sim._lock:
            sim.stats.requests += 1
            if params.get("offset", "0") == "0":
                sim.stats.listings += 1
            if problem:
                sim.stats.rejected += 1
        if problem:
            self._send(problem[0], _error(problem[1], problem[2], request_id), request_id)
            return
        if route["project"] != sim.project_id:
            self._send(403, _error("ModelArts.0203", "No permission for this project.", request_id))
            return
        fault = sim._next_fault()
        if fault is not None and fault.kind != "slow":
            self._fault(fault, params, request_id)
            return
        time.sleep(sim.latency + (fault.delay if fault else 0.0))
        if route["api"] == "notebooks":
            status, payload = sim.notebooks_page(params)
        else:
            status, payload = sim.list_page(params)
        self._send(status, payload, request_id)

    # -- answers --------------------------------------------------------------------------

    def _fault(self, fault: Fault, params: dict[str, str], request_id: str) -> None:
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
                self.wfile.write(b'{"total_count":1,"instances":[')
                while time.monotonic() < deadline:
                    self.wfile.write(b" " * 65536)
            return
        if fault.kind in ("malformed", "truncated", "not_json"):
            _, good = self.sim.list_page(params)
            payload = {
                "truncated": good[: len(good) // 2],
                "not_json": b"<html><body>Bad Gateway</body></html>",
                "malformed": b'{"total_count": 1, "instances": {"id": 42}}',
            }[fault.kind]
            self._send(200, fault.body or payload, request_id)
            return
        body = (
            fault.body
            if fault.body is not None
            else _error(
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
