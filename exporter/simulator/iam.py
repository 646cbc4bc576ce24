"""Who may call: the gateway's AK/SK and token checks, IAM's tokens, the ECS metadata keys.

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
    ) -> None:
        self.project_id = project_id
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
            if self.tokens.get(token, 0.0) > self.clock():
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


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iam_error(code: int, title: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "title": title, "message": message}}).encode()
