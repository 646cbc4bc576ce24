"""The ModelArts list APIs, simulated over HTTP on loopback, with faults on demand.

It checks AK/SK signatures exactly as the gateway does (and X-Auth-Token for token
auth), issues IAM tokens and temporary keys as IAM, STS, the metadata service (with its
session tokens) and the CCE pod identity agent do, and lists IAM's projects (`iam.py`),
serves the fleet through the historical list, the newer lists and the flavors
list with the vendor's parameters and shapes (`pages.py`, `records.py`), and can be told
to fail: the next N requests (of every API path, or of some), or a random share of them,
answer with a 5xx, a 429, a malformed or truncated body, a body that never ends, or not
at all. `--demo`, the tests and the benchmark all use it.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

from exporter.simulator.catalog import CALLER
from exporter.simulator.fleet import Fleet
from exporter.simulator.iam import (
    DEMO_ID_TOKEN,
    DEMO_IDP_ID,
    DEMO_OIDC_AGENCY_URN,
    DEMO_OIDC_PROVIDER_URN,
    DEMO_POD_TOKEN,
    DEMO_REGION,
    MAX_CLOCK_SKEW,
    Identity,
    Problem,
)
from exporter.simulator.pages import Answer, Pages
from exporter.simulator.routes import (
    IAM_TOKENS_PATH,
    METADATA_PATH,
    METADATA_TOKEN_PATH,
    POD_IDENTITY_PATH,
    Handler,
)

__all__ = [
    "CALLER",
    "DEMO_AK",
    "DEMO_IAM_LOGIN",
    "DEMO_IAM_USER",
    "DEMO_IDP_ID",
    "DEMO_ID_TOKEN",
    "DEMO_OIDC_AGENCY_URN",
    "DEMO_OIDC_PROVIDER_URN",
    "DEMO_POD_TOKEN",
    "DEMO_PROJECT_ID",
    "DEMO_REGION",
    "DEMO_SK",
    "IAM_TOKENS_PATH",
    "MAX_CLOCK_SKEW",
    "METADATA_PATH",
    "METADATA_TOKEN_PATH",
    "POD_IDENTITY_PATH",
    "Fault",
    "Simulator",
    "Stats",
]

DEMO_PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
DEMO_AK = "DEMOAKSIMULATOR00001"
DEMO_SK = "demo-secret-key-not-a-real-one-0000000000"
DEMO_IAM_USER = "demo-user"
DEMO_IAM_LOGIN = ("demo-password-0000", "demo-domain")  # password, domain


@dataclass
class Fault:
    """What to answer instead of the API: see the kinds below."""

    kind: str = "status"  # status | malformed | truncated | not_json | hang | endless | slow
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # default: an error document in the gateway's shape
    delay: float = 0.0  # for hang (how long to hold) and slow (then answer normally)


@dataclass
class Stats:
    requests: int = 0  # every request to a notebook list path (historical, /notebooks[/all])
    # First pages (offset 0; of the newer lists, of the default feature) by list path.
    first_pages: dict[str, int] = field(default_factory=dict)
    flavor_requests: int = 0  # requests to /notebooks/flavors
    rejected: int = 0  # signature, token or X-Project-Id failures
    # AK/SK requests whose signed headers lack x-project-id, which the vendor's SDK signs
    # on every request (huaweicloudsdkcore BasicCredentials.sign_request)
    unsigned_project_id: int = 0
    not_found: int = 0  # 404 APIG.0101: a path no API answers, or the retired historical one
    paths: dict[str, int] = field(default_factory=dict)  # "notebooks/all" → requests
    iam_requests: int = 0  # passwords, id tokens, temporary keys, projects
    metadata_requests: int = 0  # the keys
    metadata_token_requests: int = 0  # the session tokens (PUT)
    sts_requests: int = 0
    pod_identity_requests: int = 0

    @property
    def listings(self) -> int:
        """Listings as the API saw them: one per exporter refresh, whichever list API(s)
        it reads (each reads every list once per refresh)."""
        return max(self.first_pages.values(), default=0)


class Simulator:
    """The API on 127.0.0.1; `url` is its base. Use as a context manager or start/stop.

    `demanager=False`: the historical `/demanager/instances` is retired, and answers as the
    gateway does for an unpublished API (404 APIG.0101).
    """

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
        demanager: bool = True,
        region: str = DEMO_REGION,
    ) -> None:
        self.fleet = fleet or Fleet(seed=seed, clock=clock)
        self.project_id = project_id
        self.identity = Identity(
            project_id=project_id,
            ak=ak,
            sk=sk,
            security_token=security_token,
            iam_users=iam_users if iam_users is not None else {DEMO_IAM_USER: DEMO_IAM_LOGIN},
            credential_lifetime=credential_lifetime,
            clock=clock,
            region=region,
        )
        self.pages = Pages(self.fleet, clock)
        self.demanager = demanager
        self.latency = latency
        self.fault_rate = fault_rate
        self.clock = clock
        self.stats = Stats()
        self._rng = random.Random(seed)
        self._faults: list[tuple[Fault, int | None, re.Pattern[str] | None]] = []
        self._lock = threading.Lock()
        handler = type("Handler", (Handler,), {"sim": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # The identity's state, as attributes of the simulator as before.
    @property
    def ak(self) -> str:
        return self.identity.ak

    @property
    def sk(self) -> str:
        return self.identity.sk

    @property
    def security_token(self) -> str | None:
        return self.identity.security_token

    @property
    def iam_users(self) -> dict[str, tuple[str, str]]:
        return self.identity.iam_users

    @property
    def credential_lifetime(self) -> float:
        return self.identity.credential_lifetime

    @property
    def tokens(self) -> dict[str, float]:
        """IAM token → expiry."""
        return self.identity.tokens

    @property
    def temporary_keys(self) -> dict[str, tuple[str, str, float]]:
        """Temporary ak → sk, security token, expiry."""
        return self.identity.temporary_keys

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

    def inject(self, fault: Fault, times: int | None = 1, path: str | None = None) -> None:
        """Answer the next `times` API requests with `fault` (None: until `clear()`).

        `path`, a regular expression searched in the API path after `/v1/{project_id}/`
        (`demanager/instances`, `notebooks`, `notebooks/all`, `notebooks/flavors`), limits
        it to those: `path="flavors"`, `path="demanager"`, `path="^notebooks(/all)?$"`.
        Without it, every API path. Faults apply in the order injected.
        """
        with self._lock:
            self._faults.append((fault, times, re.compile(path) if path is not None else None))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def _next_fault(self, api: str) -> Fault | None:
        with self._lock:
            for index, (fault, times, path) in enumerate(self._faults):
                if path is not None and not path.search(api):
                    continue
                if times is not None:
                    if times <= 1:
                        self._faults.pop(index)
                    else:
                        self._faults[index] = (fault, times - 1, path)
                return fault
            if self.fault_rate and self._rng.random() < self.fault_rate:
                return Fault(status=self._rng.choice((429, 500, 503)), headers={"Retry-After": "1"})
        return None

    # -- the API, callable without HTTP -------------------------------------------------

    def authenticate(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> Problem | None:
        """None if the request is properly signed (or carries a valid token), else the error."""
        return self.identity.authenticate(method, raw_path, headers, body)

    def issue_token(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        return self.identity.issue_token(body)

    def issue_temporary_keys(self) -> bytes:
        return self.identity.issue_temporary_keys()

    def list_page(self, params: dict[str, str]) -> Answer:
        """`GET /demanager/instances` with these parameters: status and body."""
        return self.pages.demanager(params)

    def notebooks_page(self, params: dict[str, str], *, every_user: bool = True) -> Answer:
        """`GET /notebooks/all` (`every_user`) or `/notebooks`: status and body."""
        return self.pages.notebooks(params, every_user=every_user)

    def flavors_page(self, params: dict[str, str]) -> Answer:
        """`GET /notebooks/flavors`: status and body."""
        return self.pages.flavors(params)
