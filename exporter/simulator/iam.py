"""Who may call: the gateway's AK/SK and token checks, IAM's tokens, the ECS metadata keys,
and the workload identities: IAM's OIDC federation, STS's assume-with-oidc, CCE pod
identity, the metadata service's session tokens, IAM's project listing.

The gateway check is the vendor's: the canonical request and signature of
`exporter.modelarts.auth.signer` (itself checked against the vendor's signer), a 15-minute
clock skew, the security token of temporary keys. It also reads what the vendor SDK adds
to every AK/SK request: `X-Project-Id`, signed (huaweicloudsdkcore
`BasicCredentials.sign_request`).
"""

from __future__ import annotations

import hmac
import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlsplit

from exporter.modelarts.auth.signer import (
    DATE_FORMAT,
    canonical_query,
    canonical_request,
    signature,
)

MAX_CLOCK_SKEW = 15 * 60
# What the simulated workload identities accept (the demo's, the tests' and the docs').
DEMO_REGION = "cn-north-4"
DEMO_IDP_ID = "demo-cce-oidc"
DEMO_ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.demo-service-account-token.c2lnbmF0dXJl"
DEMO_OIDC_PROVIDER_URN = "iam::0a1b2c3d4e5f60718293a4b5c6d7e8f9:identity-provider:demo-oidc"
DEMO_OIDC_AGENCY_URN = "iam::0a1b2c3d4e5f60718293a4b5c6d7e8f9:agency:modelarts-reader"
DEMO_POD_TOKEN = "demo-pod-identity-authorization-token"
_AUTH = re.compile(r"SDK-HMAC-SHA256 Access=([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]+)")
_BAD_AUTH = "Incorrect IAM authentication information"

Problem = tuple[int, str, str]  # HTTP status, error_code, error_msg


def signed_headers(headers: dict[str, str]) -> list[str] | None:
    """The names an AK/SK request says it signed, lower case; None if it is not AK/SK."""
    lowered = {k.lower(): v for k, v in headers.items()}
    match = _AUTH.fullmatch(lowered.get("authorization", ""))
    return match[2].lower().split(";") if match else None


class Identity:
    """The keys, users and tokens the simulated gateway, IAM and metadata service know."""

    def __init__(
        self,
        *,
        project_id: str,
        ak: str,
        sk: str,
        security_token: str | None,
        iam_users: dict[str, tuple[str, str]],
        credential_lifetime: float,
        clock: Callable[[], float],
        region: str = DEMO_REGION,
    ) -> None:
        self.project_id = project_id
        self.region = region
        # Workload identities: the id tokens IAM and STS take (rotate by changing the set),
        # the identity provider and agency they take them for, the pod identity tokens.
        self.idp_id = DEMO_IDP_ID
        self.id_tokens: set[str] = {DEMO_ID_TOKEN}
        self.oidc_provider_urn = DEMO_OIDC_PROVIDER_URN
        self.oidc_agency_urn = DEMO_OIDC_AGENCY_URN
        self.pod_tokens: set[str] = {DEMO_POD_TOKEN}
        # The metadata service's session tokens: "optional" (keys with or without one),
        # "required" (a 401 without one) or "unsupported" (an older service: 404 to the PUT).
        self.metadata_tokens = "optional"
        self.metadata_sessions: dict[str, float] = {}  # session token → expiry
        self.unscoped_tokens: dict[str, float] = {}  # federated IAM token → expiry
        self.sessions: list[dict[str, object]] = []  # each STS assume-with-oidc body, no token
        self.ak, self.sk, self.security_token = ak, sk, security_token
        self.iam_users = iam_users
        self.credential_lifetime = credential_lifetime
        self.clock = clock
        self.tokens: dict[str, float] = {}  # IAM token → expiry
        self.temporary_keys: dict[str, tuple[str, str, float]] = {}  # ak → sk, token, expiry
        self._lock = threading.Lock()

    def authenticate(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> Problem | None:
        """None if the request is properly signed (or carries a valid token), else the error."""
        lowered = {k.lower(): v for k, v in headers.items()}
        token = lowered.get("x-auth-token")
        if token is not None:
            if (
                max(self.tokens.get(token, 0.0), self.unscoped_tokens.get(token, 0.0))
                > self.clock()
            ):
                return None
            return (401, "APIG.0301", f"{_BAD_AUTH}: token expires")
        match = _AUTH.fullmatch(lowered.get("authorization", ""))
        if not match:
            return (401, "APIG.0301", f"{_BAD_AUTH}: Authorization header missing")
        access, signed_names, sig = match.groups()
        keys = {self.ak: (self.sk, self.security_token, float("inf")), **self.temporary_keys}
        if access not in keys or keys[access][2] <= self.clock():
            return (401, "APIG.0301", f"{_BAD_AUTH}: ak not exist")
        secret, security_token, _ = keys[access]
        if security_token is not None and lowered.get("x-security-token") != security_token:
            return (401, "APIG.0301", f"{_BAD_AUTH}: invalid security token")
        sdk_date = lowered.get("x-sdk-date", "")
        try:
            signed_at = datetime.strptime(sdk_date, DATE_FORMAT).replace(tzinfo=timezone.utc)
        except ValueError:
            return (401, "APIG.0301", f"{_BAD_AUTH}: bad X-Sdk-Date")
        if abs(signed_at.timestamp() - self.clock()) > MAX_CLOCK_SKEW:
            return (401, "APIG.0301", f"{_BAD_AUTH}: request expired")
        names = signed_names.split(";")
        if any(name not in lowered for name in names):
            return (401, "APIG.0301", f"{_BAD_AUTH}: header missing")
        parts = urlsplit(raw_path)
        query = canonical_query(parse_qsl(parts.query, keep_blank_values=True))
        canonical = canonical_request(method, parts.path, query, lowered, names, body)
        if not hmac.compare_digest(signature(secret, sdk_date, canonical), sig):
            return (401, "APIG.0301", f"{_BAD_AUTH}: verify aksk signature fail")
        return None

    def project_mismatch(self, headers: dict[str, str], path_project: str) -> Problem | None:
        """An `X-Project-Id` that names another project than the path's: refused."""
        lowered = {k.lower(): v for k, v in headers.items()}
        header = lowered.get("x-project-id")
        if header is None or header == path_project:
            return None
        return (401, "APIG.0301", f"{_BAD_AUTH}: X-Project-Id does not match the project")

    def issue_token(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """`POST /v3/auth/tokens` with a password: a project-scoped token, or 401."""
        try:
            auth = json.loads(body)["auth"]
            user = auth["identity"]["password"]["user"]
            login = (user["name"], user["password"], user["domain"]["name"])
            scope = auth["scope"]["project"]
            # By id, or by name: a region's project is named after the region.
            project = scope["id"] if "id" in scope else self._project_named(scope["name"])
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

    def issue_temporary_keys(self, lifetime: float | None = None) -> bytes:
        """The ECS metadata service: temporary keys of the VM's agency."""
        credential = self._new_keys(lifetime)
        return json.dumps({"credential": credential}).encode()

    def _new_keys(self, lifetime: float | None = None) -> dict[str, str]:
        """Temporary keys the gateway takes, in IAM's and the metadata service's shape."""
        access = "TMP" + uuid.uuid4().hex[:17].upper()
        secret, token = uuid.uuid4().hex * 2, "gQpo" + uuid.uuid4().hex * 8
        expires = self.clock() + min(lifetime or self.credential_lifetime, self.credential_lifetime)
        with self._lock:
            self.temporary_keys[access] = (secret, token, expires)
        return {
            "access": access,
            "secret": secret,
            "securitytoken": token,
            "expires_at": _iso(expires),
        }

    # -- the metadata service's session tokens --------------------------------------------

    def issue_metadata_token(self, headers: dict[str, str]) -> tuple[int, bytes]:
        """`PUT /meta-data/latest/api/token`: a session token for the TTL asked (plain text)."""
        if self.metadata_tokens == "unsupported":
            return 404, b"404 Not Found"
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            ttl = int(lowered["x-metadata-token-ttl-seconds"])
        except (KeyError, ValueError):
            return 400, b"X-Metadata-Token-Ttl-Seconds is required"
        if not 1 <= ttl <= 21600:
            return 400, b"X-Metadata-Token-Ttl-Seconds must be from 1 to 21600"
        token = "MDT" + uuid.uuid4().hex * 2
        with self._lock:
            self.metadata_sessions[token] = self.clock() + ttl
        return 200, token.encode()

    def metadata_keys(self, headers: dict[str, str]) -> tuple[int, bytes]:
        """`GET /openstack/latest/securitykey`: the agency's keys, if the session allows."""
        lowered = {k.lower(): v for k, v in headers.items()}
        token = lowered.get("x-metadata-token")
        if self.metadata_tokens != "unsupported" and token is not None:
            if self.metadata_sessions.get(token, 0.0) <= self.clock():
                return 401, b"401 Unauthorized: the metadata token is invalid or expired"
        elif self.metadata_tokens == "required":
            return 401, b"401 Unauthorized: a metadata token is required"
        return 200, self.issue_temporary_keys()

    # -- OIDC federation through IAM ------------------------------------------------------

    def issue_token_by_id_token(
        self, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """`POST /v3.0/OS-AUTH/id-token/tokens`: an unscoped token for a good id token."""
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            id_token = json.loads(body)["auth"]["id_token"]["id"]
        except (ValueError, KeyError, TypeError):
            return 400, {}, _iam_error(400, "Bad Request", "The request body is invalid.")
        if lowered.get("x-idp-id") != self.idp_id:
            return 404, {}, _iam_error(404, "Not Found", "Could not find identity provider.")
        if id_token not in self.id_tokens:
            return 401, {}, _iam_error(401, "Unauthorized", "The id_token is invalid or expired.")
        token = "MIIF" + uuid.uuid4().hex * 4
        expires = self.clock() + self.credential_lifetime
        with self._lock:
            self.unscoped_tokens[token] = expires
        doc = {"token": {"expires_at": _iso(expires), "methods": ["mapped"]}}
        return 201, {"X-Subject-Token": token}, json.dumps(doc).encode()

    def issue_security_token(
        self, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """`POST /v3.0/OS-CREDENTIAL/securitytokens`: temporary keys for a token (in
        `X-Auth-Token`, or in the body as the vendor SDK sends it)."""
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            identity = json.loads(body)["auth"]["identity"]
            given = identity.get("token") or {}
            token = lowered.get("x-auth-token") or given.get("id", "")
            duration = int(given.get("duration_seconds", 900))
        except (ValueError, KeyError, TypeError, AttributeError):
            return 400, {}, _iam_error(400, "Bad Request", "The request body is invalid.")
        if identity.get("methods") != ["token"]:
            return 400, {}, _iam_error(400, "Bad Request", "The request body is invalid.")
        now = self.clock()
        if max(self.unscoped_tokens.get(token, 0.0), self.tokens.get(token, 0.0)) <= now:
            return 401, {}, _iam_error(401, "Unauthorized", "The token is invalid or expired.")
        if not 900 <= duration <= 86400:
            return 400, {}, _iam_error(400, "Bad Request", "duration_seconds is out of range.")
        doc = {"credential": self._new_keys(duration)}
        return 201, {}, json.dumps(doc).encode()

    # -- STS: assume an agency with an OIDC id token --------------------------------------

    def assume_agency_with_oidc(self, body: bytes) -> tuple[int, bytes]:
        """`POST /v5/agencies/assume-with-oidc`: the agency's temporary keys (STS v5 shape)."""
        try:
            doc = json.loads(body)
            provider, agency = doc["provider_urn"], doc["agency_urn"]
            id_token, session = doc["id_token"], doc.get("agency_session_name", "")
            duration = int(doc.get("duration_seconds", 3600))
        except (ValueError, KeyError, TypeError):
            return 400, _sts_error("STS.0001", "The request body is invalid.")
        if not 900 <= duration <= 43200:
            return 400, _sts_error("STS.0002", "duration_seconds must be from 900 to 43200.")
        if provider != self.oidc_provider_urn or agency != self.oidc_agency_urn:
            return 403, _sts_error("STS.0403", "The agency does not trust this provider.")
        if id_token not in self.id_tokens:
            return 401, _sts_error("STS.0401", "The id_token is invalid or expired.")
        with self._lock:
            self.sessions.append({k: v for k, v in doc.items() if k != "id_token"})
        keys = self._new_keys(duration)
        credentials = {
            "access_key_id": keys["access"],
            "secret_access_key": keys["secret"],
            "security_token": keys["securitytoken"],
            "expiration": keys["expires_at"],
        }
        assumed = {"agency_id": uuid.uuid4().hex, "agency_urn": f"sts::{agency}:{session}"}
        return 200, json.dumps({"credentials": credentials, "assumed_agency": assumed}).encode()

    # -- CCE pod identity ------------------------------------------------------------------

    def pod_identity_keys(self, headers: dict[str, str]) -> tuple[int, bytes]:
        """The pod identity agent: the pod's keys for a good `Authorization` token."""
        lowered = {k.lower(): v for k, v in headers.items()}
        if lowered.get("authorization") not in self.pod_tokens:
            return 401, _sts_error("PodIdentity.0401", "The authorization token is invalid.")
        return 200, json.dumps({"credential": self._new_keys()}).encode()

    # -- IAM's projects ------------------------------------------------------------------

    def list_projects(
        self, method: str, raw_path: str, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        """`GET /v3/projects?name=<region>`, signed or with a token: the region's project."""
        problem = self.authenticate(method, raw_path, headers, b"")
        if problem:
            return problem[0], _iam_error(problem[0], "Unauthorized", problem[2])
        name = dict(parse_qsl(urlsplit(raw_path).query)).get("name")
        projects = [
            {
                "id": self.project_id,
                "name": self.region,
                "domain_id": uuid.uuid5(uuid.NAMESPACE_DNS, self.project_id).hex,
                "enabled": True,
            }
        ]
        if name is not None:
            projects = [p for p in projects if p["name"] == name]
        return 200, json.dumps({"projects": projects, "links": {"self": raw_path}}).encode()

    def _project_named(self, name: str) -> str:
        return self.project_id if name == self.region else ""


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sts_error(code: str, message: str) -> bytes:
    return json.dumps(
        {"error_code": code, "error_msg": message, "request_id": uuid.uuid4().hex}
    ).encode()


def _iam_error(code: int, title: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "title": title, "message": message}}).encode()
