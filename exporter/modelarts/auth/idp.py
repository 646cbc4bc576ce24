"""OIDC identity-provider federation: an id token for temporary keys, through IAM.

As the vendor SDK does it (`HUAWEICLOUD_SDK_IDP_ID`, `HUAWEICLOUD_SDK_ID_TOKEN_FILE`;
huaweicloudsdkcore.auth.internal.FederalAccessor and IamHelper):

1. `POST {iam}/v3.0/OS-AUTH/id-token/tokens`, header `X-Idp-Id`, body
   `{"auth": {"id_token": {"id": TOKEN}}}` → an unscoped token in `X-Subject-Token`;
2. `POST {iam}/v3.0/OS-CREDENTIAL/securitytokens` with that token (`X-Auth-Token`, and in
   the body as the SDK sends it) → `{"credential": {"access", "secret", "securitytoken",
   "expires_at"}}`, valid `duration_seconds` (the SDK's six hours).

The token file is read anew at every renewal: a projected service-account token rotates.
A refused id token is a `RefusedCredentials`: backed off, never sent again in a loop.
"""

from __future__ import annotations

from collections.abc import Callable

import requests

from exporter.modelarts.auth.provider import (
    TemporaryKeys,
    json_body,
    read_token_file,
    temporary_credential,
)
from exporter.modelarts.auth.signer import AkSkAuth
from exporter.modelarts.errors import CredentialError

ID_TOKEN_PATH = "/v3.0/OS-AUTH/id-token/tokens"
SECURITY_TOKENS_PATH = "/v3.0/OS-CREDENTIAL/securitytokens"
DURATION = 6 * 3600  # seconds the temporary keys are asked for (the SDK's)
_JSON = {"Content-Type": "application/json;charset=UTF-8"}


class IdpFederationProvider(TemporaryKeys):
    mode = "idp"

    def __init__(
        self,
        iam_url: str,
        idp_id: str,
        id_token_file: str,
        *,
        session: requests.Session,
        timeout: float = 5.0,
        clock: Callable[[], float],
        project_id: str = "",
        duration: int = DURATION,
    ) -> None:
        super().__init__(session, timeout, clock, project_id)
        self.iam_url = iam_url.rstrip("/")
        self.idp_id = idp_id
        self.id_token_file = id_token_file
        self.duration = duration

    def fetch(self) -> tuple[AkSkAuth, float]:
        id_token = read_token_file(self.id_token_file, "id token")
        self.learn(id_token, *self._learnt)
        response = self.send(
            "IAM (id token)",
            "POST",
            self.iam_url + ID_TOKEN_PATH,
            headers={"X-Idp-Id": self.idp_id, **_JSON},
            json={"auth": {"id_token": {"id": id_token}}},
        )
        token = response.headers.get("X-Subject-Token", "")
        if not token:
            raise CredentialError(
                "IAM (id token) answered without an X-Subject-Token header",
                code="auth_malformed",
            )
        self.learn(id_token, token, *self._learnt)
        body = {
            "auth": {
                "identity": {
                    "methods": ["token"],
                    "token": {"id": token, "duration_seconds": self.duration},
                }
            }
        }
        response = self.send(
            "IAM (security token)",
            "POST",
            self.iam_url + SECURITY_TOKENS_PATH,
            headers={"X-Auth-Token": token, **_JSON},
            json=body,
        )
        credential, expires = temporary_credential(
            json_body(response, "IAM (security token)"), "IAM (security token)"
        )
        self.learn(id_token, token, credential["secret"], credential["securitytoken"])
        return self.signer(credential), expires

    def __repr__(self) -> str:
        return f"IdpFederationProvider(idp_id={self.idp_id!r}, file={self.id_token_file!r})"
