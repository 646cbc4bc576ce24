"""Temporary access keys of an ECS agency, from the metadata service of the cloud VM.

As the vendor SDK asks for them (huaweicloudsdkcore.auth.internal.MetadataAccessor): a
session token first, `PUT {base}/meta-data/latest/api/token` with
`X-Metadata-Token-Ttl-Seconds`, then `GET {base}/openstack/latest/securitykey` with
`X-Metadata-Token`, which answers `{"credential": {"access", "secret", "securitytoken",
"expires_at"}}`. Where the service has no session tokens (404, 405 or 503 to the PUT),
or does not answer it, the keys are asked for without one, and a token is tried again a
day later. A 401 to the keys (the session token expired) gets one new token and one
retry. The keys sign requests like permanent ones, with `X-Security-Token`.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import requests

from exporter.modelarts.auth.provider import (
    TemporaryKeys,
    json_body,
    refusal,
    temporary_credential,
)
from exporter.modelarts.auth.signer import AkSkAuth
from exporter.modelarts.errors import CredentialError

METADATA_BASE = "http://169.254.169.254"
SECURITY_KEY_PATH = "/openstack/latest/securitykey"
TOKEN_PATH = "/meta-data/latest/api/token"
METADATA_URL = METADATA_BASE + SECURITY_KEY_PATH
TOKEN_TTL = 6 * 3600  # seconds a session token is asked for (the SDK's)
TOKENLESS_RECHECK = 24 * 3600  # after a 404/405/503 to the PUT, try a token again then
_NO_TOKENS = (404, 405, 503)
_NO_AGENCY = "Please configure Cloud Service Agency first"


def token_url(metadata_url: str) -> str:
    """The session token URL on the same service as the security key URL."""
    if metadata_url.endswith(SECURITY_KEY_PATH):
        return metadata_url[: -len(SECURITY_KEY_PATH)] + TOKEN_PATH
    parts = urlsplit(metadata_url)
    return f"{parts.scheme}://{parts.netloc}{TOKEN_PATH}"


class EcsAgencyProvider(TemporaryKeys):
    mode = "ecs"

    def __init__(
        self,
        metadata_url: str = METADATA_URL,
        *,
        session: requests.Session,
        timeout: float = 3.0,
        clock: Callable[[], float],
        project_id: str = "",
    ) -> None:
        super().__init__(session, timeout, clock, project_id)
        self.url = metadata_url
        self.token_url = token_url(metadata_url)
        self._token = ""
        self._token_until = 0.0  # when the session token expires
        self._tokenless_until = 0.0  # no token asked for before then (the service has none)

    def fetch(self) -> tuple[AkSkAuth, float]:
        now = self.clock()
        if now >= self._token_until and now >= self._tokenless_until:
            self._new_token(required=False)
        response = self._security_key()
        if response.status_code == 401 and _NO_AGENCY not in response.text:
            self._new_token(required=True)  # the session token expired or was refused
            response = self._security_key()
        if response.status_code >= 400:
            raise refusal("metadata service", response)
        credential, expires = temporary_credential(
            json_body(response, "metadata service"), "metadata service"
        )
        self.learn(credential["secret"], credential["securitytoken"], self._token)
        return self.signer(credential), expires

    def _security_key(self) -> requests.Response:
        headers = {"X-Metadata-Token": self._token} if self._token else {}
        return self.request("metadata service", "GET", self.url, headers=headers)

    def _new_token(self, *, required: bool) -> None:
        """A session token; none where the service has none (unless `required`)."""
        headers = {"X-Metadata-Token-Ttl-Seconds": str(TOKEN_TTL)}
        try:
            response = self.request("metadata token", "PUT", self.token_url, headers=headers)
        except CredentialError:
            if required:
                raise
            response = None  # no answer to the PUT: the keys may still come without a token
        now = self.clock()
        if response is not None and response.status_code == 200:
            self._token = response.text.strip()
            if not self._token:
                raise CredentialError("metadata token: empty answer", code="auth_malformed")
            self._token_until = now + TOKEN_TTL - 600  # renewed ten minutes early
            return
        if not required and (response is None or response.status_code in _NO_TOKENS):
            self._token, self._tokenless_until = "", now + TOKENLESS_RECHECK
            return
        assert response is not None
        raise refusal("metadata token", response)

    def __repr__(self) -> str:
        return f"EcsAgencyProvider(url={self.url!r})"
