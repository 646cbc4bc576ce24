"""Permanent or temporary access keys from the environment: sign every request."""

from __future__ import annotations

import requests
from pydantic import SecretStr

from exporter.modelarts.auth.provider import CredentialProvider
from exporter.modelarts.auth.signer import AkSkAuth


class AkSkProvider(CredentialProvider):
    mode = "aksk"

    def __init__(
        self,
        ak: SecretStr,
        sk: SecretStr,
        security_token: SecretStr | None = None,
        project_id: str = "",
    ):
        self._signer = AkSkAuth(ak, sk, security_token, project_id=project_id)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return self._signer(request)

    def __repr__(self) -> str:
        return f"AkSkProvider({self._signer!r})"
