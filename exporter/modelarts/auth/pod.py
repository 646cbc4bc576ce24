"""CCE pod identity: the node's agent hands a pod the temporary keys of its identity.

As the vendor SDK asks for them (`HC_CONTAINER_CREDENTIALS_FULL_URI`,
`HC_CONTAINER_AUTHORIZATION_TOKEN_FILE`; huaweicloudsdkcore.auth.internal
.PodIdentityAccessor): `POST {uri}` with the token file's content as `Authorization` and
an empty JSON body → `{"credential": {"access", "secret", "securitytoken",
"expires_at"}}`. The token file is read anew at every renewal (it rotates).
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


class PodIdentityProvider(TemporaryKeys):
    mode = "pod-identity"

    def __init__(
        self,
        uri: str,
        token_file: str,
        *,
        session: requests.Session,
        timeout: float = 5.0,
        clock: Callable[[], float],
        project_id: str = "",
    ) -> None:
        super().__init__(session, timeout, clock, project_id)
        self.uri = uri
        self.token_file = token_file

    def fetch(self) -> tuple[AkSkAuth, float]:
        token = read_token_file(self.token_file, "pod identity token")
        self.learn(token, *self._learnt)
        response = self.send(
            "pod identity", "POST", self.uri, headers={"Authorization": token}, json={}
        )
        credential, expires = temporary_credential(
            json_body(response, "pod identity"), "pod identity"
        )
        self.learn(token, credential["secret"], credential["securitytoken"])
        return self.signer(credential), expires

    def __repr__(self) -> str:
        return f"PodIdentityProvider(uri={self.uri!r}, file={self.token_file!r})"
