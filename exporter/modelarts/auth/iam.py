"""An IAM user's password exchanged for a project-scoped token (`POST /v3/auth/tokens`).

Scoped to the project by id, or by name (the region's) while the project id is looked
up. The token is valid for 24 hours (it may be revoked earlier): it is kept until ten
minutes before `expires_at` and fetched anew after a 401 that says it is no longer good.
"""

from __future__ import annotations

from collections.abc import Callable

import requests
from pydantic import SecretStr

from exporter.modelarts.auth.provider import ExpiringCredentials, json_body, parse_expiry
from exporter.modelarts.errors import CredentialError


class IamPasswordProvider(ExpiringCredentials):
    mode = "iam"

    def __init__(
        self,
        iam_url: str,
        username: str,
        password: SecretStr,
        domain: str,
        project_id: str,
        *,
        project_name: str = "",
        session: requests.Session,
        timeout: float = 5.0,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(session, timeout, clock)
        self.url = f"{iam_url.rstrip('/')}/v3/auth/tokens"
        self.username = username
        self._password = password
        self.domain = domain
        self.project_id = project_id
        self.project_name = project_name

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["X-Auth-Token"] = self.current()
        return request

    def fetch(self) -> tuple[str, float]:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.username,
                            "password": self._password.get_secret_value(),
                            "domain": {"name": self.domain},
                        }
                    },
                },
                "scope": {"project": self._scope()},
            }
        }
        response = self.send("IAM", "POST", self.url, json=body)
        token = response.headers.get("X-Subject-Token", "")
        if not token:
            raise CredentialError(
                "IAM answered without an X-Subject-Token header", code="auth_malformed"
            )
        doc = json_body(response, "IAM")
        expires = doc.get("token", {}).get("expires_at") if isinstance(doc, dict) else None
        self.learn(token)
        return token, parse_expiry(expires, "IAM token")

    def _scope(self) -> dict[str, str]:
        """The project by id; without one, by name (a region's project is named after it),
        which is how the project id is looked up in this mode."""
        return {"id": self.project_id} if self.project_id else {"name": self.project_name}

    def __repr__(self) -> str:
        return f"IamPasswordProvider(user={self.username!r}, domain={self.domain!r})"
