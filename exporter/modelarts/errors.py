"""Errors of the ModelArts API (and of IAM and the metadata service), read in any shape."""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any


class ApiError(Exception):
    """A list request failed; `str()` is a log-ready line without any secret."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        request_id: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after

    @property
    def is_auth(self) -> bool:
        return self.status in (401, 403)

    def with_hint(self, hint: str) -> ApiError:
        """The same error, its message prefixed with what it most likely means."""
        return type(self)(
            f"{hint}: {super().__str__()}",
            status=self.status,
            code=self.code,
            request_id=self.request_id,
            retry_after=self.retry_after,
        )

    def __str__(self) -> str:
        parts = [f"status={self.status}" if self.status else "", self.code, super().__str__()]
        if self.request_id:
            parts.append(f"(request_id={self.request_id})")
        return " ".join(p for p in parts if p)


class CredentialError(ApiError):
    """Credentials could not be obtained (IAM or the metadata service failed).

    Never answered by a renewal: that would send the same password again, and IAM locks
    a user after repeated failures.
    """


def error_from_response(status: int, body: bytes, headers: Any) -> ApiError:
    """Read the error in any of its shapes: `error_msg`, `error_message` or `message`,
    at the top level or, as IAM answers, inside an `error` object."""
    code = message = request_id = ""
    try:
        doc = json.loads(body) if body else {}
    except ValueError:
        doc = {}
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        doc = {**doc["error"], "code": doc["error"].get("title") or doc["error"].get("code")}
    if isinstance(doc, dict):
        code = str(doc.get("error_code") or doc.get("code") or "")
        message = str(doc.get("error_msg") or doc.get("error_message") or doc.get("message") or "")
        request_id = str(doc.get("request_id") or "")
    if not message:
        message = _http_reason(status)
    request_id = request_id or headers.get("X-Request-Id", "")
    retry_after = _retry_after(headers.get("Retry-After")) if status == 429 else None
    return ApiError(
        message[:300], status=status, code=code, request_id=request_id, retry_after=retry_after
    )


def _http_reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "unexpected status"


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds (a number or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
