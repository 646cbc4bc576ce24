"""The one interface every credential kind offers the client: sign or decorate a request.

A provider is a `requests` auth object. Those holding expiring credentials (IAM tokens,
temporary keys of an agency, a federated identity or a pod) fetch them on first use, keep
them until shortly before they expire, and `renew()` on a 401 that says they are no
longer good; the client asks for that at most once per refresh. Requests a provider
sends itself (IAM, STS, the metadata service, the pod identity agent) are counted.

A credential service that refuses (any 4xx but 429) raises `RefusedCredentials`, which
the cache backs off from as from a refused signature: a refused password or id token is
never sent again in a loop.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests
from pydantic import SecretStr

from exporter.modelarts.auth.signer import AkSkAuth
from exporter.modelarts.errors import CredentialError, error_from_response


class CredentialProvider(requests.auth.AuthBase):
    # aksk | iam | ecs | token | idp | oidc-sts | pod-identity | credentials-file
    mode = ""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        raise NotImplementedError

    def renew(self) -> bool:
        """Forget the current credentials; False when there is nothing to renew."""
        return False

    def requests_sent(self) -> dict[str, int]:
        """Requests to IAM, STS, the metadata service or the pod identity agent, by HTTP
        status or `error`."""
        return {}

    def secrets(self) -> list[str]:
        """Secret values learnt at run time (tokens), for the log redaction filter."""
        return []


class RefusedCredentials(CredentialError):
    """A credential service refused what it was sent (a 4xx other than 429): a wrong
    password, id token or authorization token. Backed off like a refused signature."""

    @property
    def is_auth(self) -> bool:
        return True


class ExpiringCredentials(CredentialProvider):
    """Shared logic of providers whose credentials expire: cache, renew, count, parse."""

    # Seconds before expiry at which credentials are fetched anew; at most half of their
    # lifetime, so that short-lived ones are not fetched at every request.
    renew_before = 600.0

    def __init__(self, session: requests.Session, timeout: float, clock: Callable[[], float]):
        self.session = session
        self.timeout = timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._expires_at = 0.0
        self._renew_at = 0.0
        self._counts: Counter[str] = Counter()
        self._learnt: list[str] = []

    def current(self) -> Any:
        """The cached credentials, fetched anew when missing or about to expire."""
        with self._lock:
            if self.clock() >= self._renew_at:
                fetched_at = self.clock()
                credentials, self._expires_at = self.fetch()
                self._credentials = credentials
                margin = min(self.renew_before, max(self._expires_at - fetched_at, 0.0) / 2)
                self._renew_at = self._expires_at - margin
            return self._credentials

    def renew(self) -> bool:
        with self._lock:
            self._expires_at = self._renew_at = 0.0
        return True

    def fetch(self) -> tuple[Any, float]:
        """New credentials and their expiry (Unix seconds)."""
        raise NotImplementedError

    def requests_sent(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def secrets(self) -> list[str]:
        return list(self._learnt)

    def request(self, what: str, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request, counted by its status; CredentialError only when unreachable."""
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as err:
            self._counts["error"] += 1
            raise CredentialError(
                f"{what} unreachable: {type(err).__name__}", code="auth_unreachable"
            ) from None
        self._counts[str(response.status_code)] += 1
        return response

    def send(self, what: str, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request to a credential service; an error answer becomes CredentialError."""
        response = self.request(what, method, url, **kwargs)
        if response.status_code >= 400:
            raise refusal(what, response)
        return response

    def learn(self, *secrets: str) -> None:
        self._learnt = [s for s in secrets if s]


def refusal(what: str, response: requests.Response) -> CredentialError:
    """The error of a credential service's answer, with its code, message and request id
    (IAM's trace id when it has no other)."""
    status = response.status_code
    err = error_from_response(status, response.content, response.headers)
    kind = RefusedCredentials if 400 <= status < 500 and status != 429 else CredentialError
    return kind(
        f"{what} refused: {err.args[0]}",
        status=status,
        code=err.code,
        request_id=err.request_id or response.headers.get("X-IAM-Trace-Id", ""),
        retry_after=err.retry_after,
    )


class TemporaryKeys(ExpiringCredentials):
    """Temporary access keys with a security token: every request signed with them."""

    def __init__(
        self,
        session: requests.Session,
        timeout: float,
        clock: Callable[[], float],
        project_id: str = "",
    ) -> None:
        super().__init__(session, timeout, clock)
        self.project_id = project_id

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        signer: AkSkAuth = self.current()
        return signer(request)

    def signer(self, credential: dict[str, str]) -> AkSkAuth:
        """The signer of credentials read by `temporary_credential`."""
        return AkSkAuth(
            SecretStr(credential["access"]),
            SecretStr(credential["secret"]),
            SecretStr(credential["securitytoken"]),
            clock=lambda: datetime.fromtimestamp(self.clock(), timezone.utc),
            project_id=self.project_id,
        )


# The names each field of temporary credentials goes by: IAM and the metadata service
# answer `credential.access`, STS v5 `credentials.access_key_id` (the vendor SDK reads
# them all, huaweicloudsdkcore.auth.internal.StsAccessor._process_credential).
_ALIASES = {
    "access": ("access", "accessKeyId", "access_key_id"),
    "secret": ("secret", "secretAccessKey", "secret_access_key"),
    "securitytoken": ("securitytoken", "securityToken", "security_token"),
    "expires_at": ("expires_at", "expiration"),
}


def temporary_credential(doc: Any, what: str) -> tuple[dict[str, str], float]:
    """`{"credential": {...}}` or `{"credentials": {...}}` → the four fields and expiry."""
    if isinstance(doc, dict):
        doc = doc.get("credential") or doc.get("credentials") or doc
    found: dict[str, str] = {}
    if isinstance(doc, dict):
        for name, aliases in _ALIASES.items():
            value = next((doc[a] for a in aliases if doc.get(a)), None)
            if isinstance(value, str):
                found[name] = value
    if len(found) != len(_ALIASES):
        raise CredentialError(
            f"{what} answer lacks credential.access/secret/securitytoken/expires_at",
            code="auth_malformed",
        )
    return found, parse_expiry(found["expires_at"], what)


def read_token_file(path: str, what: str) -> str:
    """A token from a file, read anew each time (projected tokens rotate)."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        raise CredentialError(
            f"cannot read the {what} file {path}: {err.strerror}", code="auth_token_file"
        ) from None
    if not token:
        raise CredentialError(f"the {what} file {path} is empty", code="auth_token_file")
    return token


def parse_expiry(value: Any, what: str) -> float:
    """ISO 8601 (`2022-10-17T18:51:25.231000Z`) → Unix seconds; CredentialError when unreadable."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise CredentialError(f"{what}: unreadable expires_at", code="auth_malformed") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # the services answer in UTC
    return moment.timestamp()


def json_body(response: requests.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise CredentialError(f"{what}: answer is not JSON", code="auth_malformed") from None
