"""Temporary access keys of an ECS agency, from the metadata service of the cloud VM.

`GET {metadata_url}` answers `{"credential": {"access", "secret", "securitytoken",
"expires_at"}}`; the keys sign requests like permanent ones, with `X-Security-Token`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import requests
from pydantic import SecretStr

from exporter.modelarts.auth.provider import ExpiringCredentials, json_body, parse_expiry
from exporter.modelarts.auth.signer import AkSkAuth
from exporter.modelarts.errors import CredentialError

METADATA_URL = "http://169.254.169.254/openstack/latest/securitykey"


class EcsAgencyProvider(ExpiringCredentials):
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
        super().__init__(session, timeout, clock)
        self.url = metadata_url
        self.project_id = project_id

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        signer: AkSkAuth = self.current()
        return signer(request)

    def fetch(self) -> tuple[AkSkAuth, float]:
        doc = json_body(self.send("metadata service", "GET", self.url), "metadata service")
        credential = doc.get("credential") if isinstance(doc, dict) else None
        fields = ("access", "secret", "securitytoken", "expires_at")
        if not isinstance(credential, dict) or not all(credential.get(f) for f in fields):
            raise CredentialError(
                "metadata service answer lacks credential.access/secret/securitytoken/expires_at",
                code="auth_malformed",
            )
        self.learn(credential["secret"], credential["securitytoken"])
        signer = AkSkAuth(
            SecretStr(str(credential["access"])),
            SecretStr(str(credential["secret"])),
            SecretStr(str(credential["securitytoken"])),
            clock=lambda: datetime.fromtimestamp(self.clock(), timezone.utc),
            project_id=self.project_id,
        )
        return signer, parse_expiry(credential["expires_at"], "metadata credential")

    def __repr__(self) -> str:
        return f"EcsAgencyProvider(url={self.url!r})"
