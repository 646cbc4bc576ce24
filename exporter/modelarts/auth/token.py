"""A fixed IAM token, for debugging: sent as `X-Auth-Token`, never renewed."""

from __future__ import annotations

import requests
from pydantic import SecretStr

from exporter.modelarts.auth.provider import CredentialProvider


class StaticTokenProvider(CredentialProvider):
    mode = "token"

    def __init__(self, token: SecretStr):
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["X-Auth-Token"] = self._token.get_secret_value()
        return request

    def __repr__(self) -> str:
        return "StaticTokenProvider(token=**********)"
