"""The simulator's IAM, STS, metadata and pod identity side, checked by the vendor's SDK:
its own accessors (huaweicloudsdkcore.auth.internal) and request builders (IamHelper) get
their credentials and projects from the simulator, so it answers what the real services
answer to the requests the vendor sends, and refuses what they refuse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.auth.internal import (
    FederalAccessor,
    IamHelper,
    MetadataAccessor,
    OidcStsAccessor,
    PodIdentityAccessor,
)
from huaweicloudsdkcore.exceptions.exceptions import SdkException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from exporter.simulator import DEMO_AK, DEMO_PROJECT_ID, DEMO_SK, Fleet, Simulator
from exporter.simulator.api import (
    DEMO_ID_TOKEN,
    DEMO_IDP_ID,
    DEMO_OIDC_AGENCY_URN,
    DEMO_OIDC_PROVIDER_URN,
    DEMO_POD_TOKEN,
    DEMO_REGION,
    POD_IDENTITY_PATH,
)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(Fleet(size=2, seed=1, evolve=False)) as simulator:
        yield simulator


class VendorHttp:
    """What the accessors need of the SDK's HttpClient: its config and a synchronous
    request that fails on an error status, as `do_request_sync` does."""

    config = HttpConfig.get_default_config()

    def do_request_sync(self, request: SdkRequest) -> requests.Response:
        query = f"?{urlencode(request.query_params)}" if request.query_params else ""
        url = f"{request.schema}://{request.host}{request.resource_path}{query}"
        response = requests.request(
            request.method,
            url,
            headers=request.header_params,
            data=request.body or None,
            timeout=10,
        )
        if response.status_code >= 400:
            raise SdkException(f"{response.status_code} {response.text}")
        return response


def written(tmp_path: Path, content: str) -> str:
    path = tmp_path / "token"
    path.write_text(content)
    return str(path)


def usable(sim: Simulator, access: str) -> bool:
    """Keys the simulated gateway takes for ModelArts requests."""
    return access in sim.temporary_keys


def test_the_vendors_idp_federation(sim, tmp_path):
    credential = FederalAccessor().get_credential(
        iam_endpoint=sim.url,
        http_client=VendorHttp(),
        idp_id=DEMO_IDP_ID,
        id_token_file=written(tmp_path, DEMO_ID_TOKEN),
    )
    assert usable(sim, credential.access) and credential.security_token
    assert credential.expire_at > 0


def test_the_vendors_idp_federation_with_a_wrong_token(sim, tmp_path):
    with pytest.raises(SdkException, match="401") as caught:
        FederalAccessor().get_credential(
            iam_endpoint=sim.url,
            http_client=VendorHttp(),
            idp_id=DEMO_IDP_ID,
            id_token_file=written(tmp_path, "a-wrong-id-token"),
        )
    assert "id_token is invalid" in str(caught.value)


def test_the_vendors_oidc_sts(sim):
    accessor = OidcStsAccessor(
        DEMO_OIDC_PROVIDER_URN, DEMO_OIDC_AGENCY_URN, DEMO_ID_TOKEN, "vendor-session", 1800
    )
    credential = accessor.get_credential(sts_endpoint=sim.url, http_client=VendorHttp())
    assert usable(sim, credential.access) and credential.secret and credential.security_token
    assert sim.identity.sessions[-1]["agency_session_name"] == "vendor-session"


def test_the_vendors_oidc_sts_with_a_wrong_token(sim):
    accessor = OidcStsAccessor(DEMO_OIDC_PROVIDER_URN, DEMO_OIDC_AGENCY_URN, "wrong")
    with pytest.raises(SdkException, match="401"):
        accessor.get_credential(sts_endpoint=sim.url, http_client=VendorHttp())


def test_the_vendors_pod_identity(sim, tmp_path):
    accessor = PodIdentityAccessor(sim.url + POD_IDENTITY_PATH, written(tmp_path, DEMO_POD_TOKEN))
    assert usable(sim, accessor.get_credential().access)
    wrong = PodIdentityAccessor(sim.url + POD_IDENTITY_PATH, written(tmp_path, "wrong"))
    with pytest.raises(SdkException, match="401"):
        wrong.get_credential()


@pytest.mark.parametrize("tokens", ["optional", "required", "unsupported"])
def test_the_vendors_metadata_accessor(tokens, sim, monkeypatch):
    monkeypatch.setattr(MetadataAccessor, "_METADATA_ENDPOINT", sim.url)
    sim.identity.metadata_tokens = tokens
    credential = MetadataAccessor().get_credential()
    assert usable(sim, credential.access)
    assert sim.stats.metadata_token_requests == 1
    assert len(sim.identity.metadata_sessions) == (0 if tokens == "unsupported" else 1)


def test_the_metadata_token_ttl_is_checked(sim):
    put = requests.put(f"{sim.url}/meta-data/latest/api/token", timeout=10)
    assert put.status_code == 400
    keys = requests.get(
        f"{sim.url}/openstack/latest/securitykey",
        headers={"X-Metadata-Token": "forged"},
        timeout=10,
    )
    assert keys.status_code == 401


def test_the_vendors_project_lookup(sim):
    request = IamHelper.get_keystone_list_projects_request(
        VendorHttp.config, sim.url, region_id=DEMO_REGION
    )
    request.header_params["Host"] = request.host
    signed = Signer(BasicCredentials(DEMO_AK, DEMO_SK)).sign(request)
    response = requests.get(f"{sim.url}{signed.uri}", headers=signed.header_params, timeout=10)
    projects = json.loads(response.content)["projects"]
    assert [(p["id"], p["name"]) for p in projects] == [(DEMO_PROJECT_ID, DEMO_REGION)]
    unsigned = requests.get(f"{sim.url}/v3/projects?name={DEMO_REGION}", timeout=10)
    assert unsigned.status_code == 401 and "error" in unsigned.json()
