"""OIDC assume-agency through STS: an id token for a trust agency's temporary keys.

As the vendor SDK does it (`HUAWEICLOUD_OIDC_*`; huaweicloudsdkcore.auth.provider
.OidcStsCredentialProvider and internal.OidcStsAccessor): `POST {sts}/v5/agencies/
assume-with-oidc`, unsigned (the id token is the proof), body `{provider_urn,
agency_urn, agency_session_name, id_token, duration_seconds}` → `{"credentials":
{"access_key_id", "secret_access_key", "security_token", "expiration"}}`. The STS host is
`HUAWEICLOUD_SDK_STS_ENDPOINT`, else the region's (endpoints.sts_endpoint).

The id token comes from `HUAWEICLOUD_OIDC_ID_TOKEN`, or from `HUAWEICLOUD_OIDC_TOKEN_FILE`,
read anew at every renewal (projected tokens rotate; the SDK reads it once).
"""

from __future__ import annotations

from collections.abc import Callable

import requests
from pydantic import SecretStr

from exporter.modelarts.auth.provider import (
    TemporaryKeys,
    json_body,
    read_token_file,
    temporary_credential,
)
from exporter.modelarts.auth.signer import AkSkAuth

ASSUME_PATH = "/v5/agencies/assume-with-oidc"
SESSION_NAME = "oidc-sts-session"  # the SDK's default
DURATION = 3600  # the SDK's and STS's default


class OidcStsProvider(TemporaryKeys):
    mode = "oidc-sts"

    def __init__(
        self,
        sts_url: str,
        provider_urn: str,
        agency_urn: str,
        *,
        id_token: SecretStr | None = None,
        id_token_file: str = "",
        session_name: str = SESSION_NAME,
        duration: int = DURATION,
        session: requests.Session,
        timeout: float = 5.0,
        clock: Callable[[], float],
        project_id: str = "",
    ) -> None:
        super().__init__(session, timeout, clock, project_id)
        self.url = sts_url.rstrip("/") + ASSUME_PATH
        self.provider_urn = provider_urn
        self.agency_urn = agency_urn
        self._id_token = id_token
        self.id_token_file = id_token_file
        self.session_name = session_name
        self.duration = duration

    def fetch(self) -> tuple[AkSkAuth, float]:
        if self._id_token is not None and self._id_token.get_secret_value():
            id_token = self._id_token.get_secret_value()
        else:
            id_token = read_token_file(self.id_token_file, "OIDC token")
        self.learn(id_token, *self._learnt)
        payload = {
            "provider_urn": self.provider_urn,
            "agency_urn": self.agency_urn,
            "agency_session_name": self.session_name,
            "id_token": id_token,
            "duration_seconds": self.duration,
        }
        response = self.send(
            "STS",
            "POST",
            self.url,
            headers={"Content-Type": "application/json;charset=UTF-8"},
            json=payload,
        )
        credential, expires = temporary_credential(json_body(response, "STS"), "STS")
        self.learn(id_token, credential["secret"], credential["securitytoken"])
        return self.signer(credential), expires

    def __repr__(self) -> str:
        return f"OidcStsProvider(agency_urn={self.agency_urn!r}, url={self.url!r})"
