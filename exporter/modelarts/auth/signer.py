"""Huawei Cloud API Gateway request signing, `SDK-HMAC-SHA256`.

The algorithm, as the vendor's API Gateway documents it ("AK/SK signing and
authentication") and its SDK implements it (`huaweicloudsdkcore.signer.signer.Signer`):
canonical request → string to sign → HMAC-SHA256 with the secret key. The published test
vectors and a cross-check against the vendor's signer are in
tests/unit/modelarts/test_signer.py.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

import requests
from pydantic import SecretStr

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()

# Headers `requests` adds for transport; proxies may rewrite them, so they are not signed.
# SignedHeaders tells the gateway which ones were, so any subset is a valid signature.
_UNSIGNED = frozenset(
    {"authorization", "user-agent", "accept", "accept-encoding", "connection", "content-length"}
)


def encode(text: str) -> str:
    """Percent-encode everything but the unreserved `A-Za-z0-9-_.~`, upper-case hex."""
    return quote(text, safe="~")


def canonical_uri(path: str) -> str:
    """Each segment decoded then re-encoded; always ends with `/` for signing."""
    uri = "/".join(encode(segment) for segment in unquote(path or "/").split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Pairs sorted by key then value, `enc(k)=enc(v)` joined with `&`."""
    return "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(pairs))


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    return sorted({name.lower() for name in headers} - _UNSIGNED)


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed: list[str],
    body: bytes,
) -> str:
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    header_block = "".join(f"{name}:{lowered[name]}\n" for name in signed)
    payload_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_BODY_SHA256
    return "\n".join(
        [method.upper(), canonical_uri(path), query, header_block, ";".join(signed), payload_hash]
    )


def signature(sk: str, sdk_date: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{sdk_date}\n{digest}"
    return hmac.new(sk.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(ak: str, signed: list[str], sig: str) -> str:
    return f"{ALGORITHM} Access={ak}, SignedHeaders={';'.join(signed)}, Signature={sig}"


@dataclass(frozen=True)
class SignedRequest:
    url: str  # with the canonical query, which must be sent exactly as signed
    headers: dict[str, str]  # every header, including Host, X-Sdk-Date and Authorization
    canonical: str


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    ak: str,
    sk: str,
    now: datetime,
    security_token: str | None = None,
) -> SignedRequest:
    """Sign one request; pure, so the published test vectors can check it."""
    parts = urlsplit(url)
    query = canonical_query(parse_qsl(parts.query, keep_blank_values=True))
    out = dict(headers)
    lowered = {name.lower() for name in out}
    if "x-sdk-date" not in lowered:
        out["X-Sdk-Date"] = now.astimezone(timezone.utc).strftime(DATE_FORMAT)
    if "host" not in lowered:
        out["Host"] = parts.netloc
    if security_token:
        out["X-Security-Token"] = security_token
    sdk_date = next(v for k, v in out.items() if k.lower() == "x-sdk-date")
    names = signed_header_names(out)
    canonical = canonical_request(method, parts.path, query, out, names, body)
    out["Authorization"] = authorization(ak, names, signature(sk, sdk_date, canonical))
    sent_url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    return SignedRequest(sent_url, out, canonical)


@dataclass(repr=False)
class AkSkAuth(requests.auth.AuthBase):
    """`requests` auth that signs each request with an access key / secret key pair."""

    ak: SecretStr
    sk: SecretStr
    security_token: SecretStr | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    # Added and signed on every request, as the vendor SDK's BasicCredentials.sign_request
    # does for project-scoped services.
    project_id: str = ""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        token = self.security_token.get_secret_value() if self.security_token else None
        headers = dict(request.headers)
        if self.project_id:
            headers["X-Project-Id"] = self.project_id
        signed = sign(
            request.method or "GET",
            request.url or "",
            headers,
            body,
            self.ak.get_secret_value(),
            self.sk.get_secret_value(),
            self.clock(),
            token,
        )
        request.url = signed.url
        request.headers.update(signed.headers)
        return request

    def __repr__(self) -> str:
        return f"AkSkAuth(ak={self.ak!r}, temporary={self.security_token is not None})"
