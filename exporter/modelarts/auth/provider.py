"""The one interface every credential kind offers the client: sign or decorate a request.

A provider is a `requests` auth object. Those holding expiring credentials (IAM tokens,
ECS agency keys) fetch them on first use, keep them until shortly before they expire,
and `renew()` on a 401 that says they are no longer good; the client asks for that at
most once per refresh. Requests a provider sends itself (IAM, metadata) are counted.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import requests

from exporter.modelarts.errors import CredentialError, error_from_response


class CredentialProvider(requests.auth.AuthBase):
    mode = ""  # aksk | iam | ecs | token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        raise NotImplementedError

    def renew(self) -> bool:
        """Forget the current credentials; False when there is nothing to renew."""
        return False

    def requests_sent(self) -> dict[str, int]:
        """Requests to IAM or the metadata service, by HTTP status or `error`."""
        return {}

    def secrets(self) -> list[str]:
        """Secret values learnt at run time (tokens), for the log redaction filter."""
        return []


class ExpiringCredentials(CredentialProvider):
    """Shared logic of providers whose credentials expire: cache, renew, count, parse."""

    renew_before = 600.0  # seconds before expiry at which credentials are fetched anew

    def __init__(self, session: requests.Session, timeout: float, clock: Callable[[], float]):
        self.session = session
        self.timeout = timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._expires_at = 0.0
        self._counts: Counter[str] = Counter()
        self._learnt: list[str] = []

    def current(self) -> Any:
        """The cached credentials, fetched anew when missing or about to expire."""
        with self._lock:
            if self.clock() >= self._expires_at - self.renew_before:
                credentials, self._expires_at = self.fetch()
                self._credentials = credentials
            return self._credentials

    def renew(self) -> bool:
        with self._lock:
            self._expires_at = 0.0
        return True

    def fetch(self) -> tuple[Any, float]:
        """New credentials and their expiry (Unix seconds)."""
        raise NotImplementedError

    def requests_sent(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def secrets(self) -> list[str]:
        return list(self._learnt)

    def send(self, what: str, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request to IAM or the metadata service; errors become CredentialError."""
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as err:
            self._counts["error"] += 1
            raise CredentialError(
                f"{what} unreachable: {type(err).__name__}", code="auth_unreachable"
            ) from None
        self._counts[str(response.status_code)] += 1
        if response.status_code >= 400:
            refusal = error_from_response(response.status_code, response.content, response.headers)
            raise CredentialError(
                f"{what} refused: {refusal.args[0]}",
                status=response.status_code,
                code=refusal.code,
                request_id=refusal.request_id,
            )
        return response

    def learn(self, *secrets: str) -> None:
        self._learnt = [s for s in secrets if s]


def parse_expiry(value: Any, what: str) -> float:
    """ISO 8601 (`2022-10-17T18:51:25.231000Z`) → Unix seconds; CredentialError when unreadable."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise CredentialError(f"{what}: unreadable expires_at", code="auth_malformed") from None


def json_body(response: requests.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise CredentialError(f"{what}: answer is not JSON", code="auth_malformed") from None
