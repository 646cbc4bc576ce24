"""Workload identities against the simulator: OIDC federation through IAM, STS's
assume-with-oidc, CCE pod identity and the ECS metadata service's session tokens.

Each flow: success, a wrong token (401 with an error body, backed off, never sent again in
a loop), expiry and renewal, a rotated token file; the metadata session token and its
fallback. The simulator and the providers share one fake clock, so an hour passes in no
time and the gateway still checks every signature against it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import responses
from pydantic import SecretStr

from exporter.modelarts.auth.ecs import EcsAgencyProvider, token_url
from exporter.modelarts.auth.idp import IdpFederationProvider
from exporter.modelarts.auth.oidc import OidcStsProvider
from exporter.modelarts.auth.pod import PodIdentityProvider
from exporter.modelarts.auth.provider import RefusedCredentials, TemporaryKeys
from exporter.modelarts.client import ModelArtsClient
from exporter.modelarts.errors import ApiError, CredentialError
from exporter.pipeline.cache import SnapshotCache
from exporter.simulator import DEMO_PROJECT_ID, Fleet, Simulator
from exporter.simulator.api import (
    DEMO_ID_TOKEN,
    DEMO_IDP_ID,
    DEMO_OIDC_AGENCY_URN,
    DEMO_OIDC_PROVIDER_URN,
    DEMO_POD_TOKEN,
    METADATA_PATH,
    POD_IDENTITY_PATH,
)

START = 1_800_000_000.0
LIFETIME = 3600.0  # of every credential the simulator hands out
ROTATED = "eyJhbGciOiJSUzI1NiJ9.rotated-service-account-token.c2lnbmF0dXJl"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Iterator[Simulator]:
    fleet = Fleet(size=3, seed=1, clock=clock, evolve=False)
    with Simulator(fleet, clock=clock, credential_lifetime=LIFETIME) as simulator:
        yield simulator


def token_file(tmp_path: Path, content: str, name: str = "token") -> str:
    path = tmp_path / name
    path.write_text(content + "\n")
    return str(path)


Factory = Callable[[Simulator, Clock, str], TemporaryKeys]


def idp(sim: Simulator, clock: Clock, path: str) -> TemporaryKeys:
    return IdpFederationProvider(
        sim.url,
        DEMO_IDP_ID,
        path,
        session=requests.Session(),
        clock=clock,
        project_id=DEMO_PROJECT_ID,
    )


def oidc_sts(sim: Simulator, clock: Clock, path: str) -> TemporaryKeys:
    return OidcStsProvider(
        sim.url,
        DEMO_OIDC_PROVIDER_URN,
        DEMO_OIDC_AGENCY_URN,
        id_token_file=path,
        session=requests.Session(),
        clock=clock,
        project_id=DEMO_PROJECT_ID,
    )


def pod_identity(sim: Simulator, clock: Clock, path: str) -> TemporaryKeys:
    return PodIdentityProvider(
        sim.url + POD_IDENTITY_PATH,
        path,
        session=requests.Session(),
        clock=clock,
        project_id=DEMO_PROJECT_ID,
    )


# flow: (factory, the token the simulator takes, how to rotate it, the service's counter)
FLOWS = {
    "idp": (idp, DEMO_ID_TOKEN, "id_tokens", "iam_requests"),
    "oidc-sts": (oidc_sts, DEMO_ID_TOKEN, "id_tokens", "sts_requests"),
    "pod-identity": (pod_identity, DEMO_POD_TOKEN, "pod_tokens", "pod_identity_requests"),
}
REQUESTS_PER_FETCH = {"idp": 2, "oidc-sts": 1, "pod-identity": 1}


def client_for(sim: Simulator, provider: TemporaryKeys, clock: Clock) -> ModelArtsClient:
    return ModelArtsClient(
        sim.url,
        DEMO_PROJECT_ID,
        provider,
        api="demanager",
        page_size=0,
        clock=clock,
        sleep=clock.sleep,
    )


def service_requests(sim: Simulator, flow: str) -> int:
    return int(getattr(sim.stats, FLOWS[flow][3]))


@pytest.mark.parametrize("flow", FLOWS)
def test_a_good_token_gets_keys_that_sign_every_list_request(flow, sim, clock, tmp_path):
    make, good, _, _ = FLOWS[flow]
    provider = make(sim, clock, token_file(tmp_path, good))
    listing = client_for(sim, provider, clock).list_instances()
    assert len(listing.instances) == 3
    assert sim.stats.rejected == 0 and sim.stats.unsigned_project_id == 0
    assert service_requests(sim, flow) == REQUESTS_PER_FETCH[flow]
    assert sum(provider.requests_sent().values()) == REQUESTS_PER_FETCH[flow]
    # The token, the temporary secret key and security token are redacted from logs.
    (secret, security_token, _), *_ = sim.temporary_keys.values()
    assert {good, secret, security_token} <= set(provider.secrets())


@pytest.mark.parametrize("flow", FLOWS)
def test_a_wrong_token_is_refused_with_the_services_error(flow, sim, clock, tmp_path):
    make = FLOWS[flow][0]
    provider = make(sim, clock, token_file(tmp_path, "not-a-token-the-service-knows"))
    with pytest.raises(ApiError) as caught:
        client_for(sim, provider, clock).list_instances()
    err = caught.value
    assert isinstance(err, RefusedCredentials) and err.is_auth  # backed off like a 401
    assert err.status == 401 and err.code and err.request_id
    assert "invalid" in str(err) and "not-a-token" not in str(err)
    assert sim.stats.requests == 0  # nothing reached ModelArts
    assert service_requests(sim, flow) == 1  # the refused token was sent once


@pytest.mark.parametrize("flow", FLOWS)
def test_a_refused_token_is_not_sent_again_in_a_loop(flow, sim, clock, tmp_path):
    make = FLOWS[flow][0]
    provider = make(sim, clock, token_file(tmp_path, "not-a-token-the-service-knows"))
    client = client_for(sim, provider, clock)
    cache = SnapshotCache(
        DEMO_PROJECT_ID, client.list_instances, ttl=30, max_staleness=300, clock=clock
    )
    end = clock.now + 3600
    while clock.now < end:  # an hour of scrapes every 15 s
        cache.status()
        clock.now += 15
    sent = service_requests(sim, flow)
    print(f"\n[an hour of a refused {flow} token] {sent} requests")
    assert sent <= 8  # 60 s, doubled up to 15 min: not 120 (every TTL) nor 240 (every scrape)


@pytest.mark.parametrize("flow", FLOWS)
def test_keys_are_renewed_before_they_expire(flow, sim, clock, tmp_path):
    make, good, _, _ = FLOWS[flow]
    provider = make(sim, clock, token_file(tmp_path, good))
    client = client_for(sim, provider, clock)
    client.list_instances()
    clock.now += LIFETIME - 700  # 700 s left: kept
    client.list_instances()
    assert service_requests(sim, flow) == REQUESTS_PER_FETCH[flow]
    clock.now += 200  # 500 s left: renewed before the gateway refuses them
    client.list_instances()
    assert service_requests(sim, flow) == 2 * REQUESTS_PER_FETCH[flow]
    assert len(sim.temporary_keys) == 2 and sim.stats.rejected == 0


@pytest.mark.parametrize("flow", FLOWS)
def test_a_rotated_token_file_is_read_at_the_next_renewal(flow, sim, clock, tmp_path):
    make, good, accepted, _ = FLOWS[flow]
    path = token_file(tmp_path, good)
    provider = make(sim, clock, path)
    client = client_for(sim, provider, clock)
    client.list_instances()
    # The kubelet rotates the projected token; the service takes only the new one now.
    Path(path).write_text(ROTATED)
    setattr(sim.identity, accepted, {ROTATED})
    clock.now += LIFETIME - 500
    assert len(client.list_instances().instances) == 3
    assert service_requests(sim, flow) == 2 * REQUESTS_PER_FETCH[flow]
    assert ROTATED in provider.secrets()


@pytest.mark.parametrize("flow", FLOWS)
def test_revoked_keys_are_renewed_once_on_a_401(flow, sim, clock, tmp_path):
    make, good, _, _ = FLOWS[flow]
    provider = make(sim, clock, token_file(tmp_path, good))
    client = client_for(sim, provider, clock)
    client.list_instances()
    sim.temporary_keys.clear()  # revoked: the gateway answers 401
    assert len(client.list_instances().instances) == 3
    assert service_requests(sim, flow) == 2 * REQUESTS_PER_FETCH[flow]


@pytest.mark.parametrize("flow", FLOWS)
def test_a_missing_or_empty_token_file_is_a_clear_error(flow, sim, clock, tmp_path):
    make = FLOWS[flow][0]
    for path in (str(tmp_path / "absent"), token_file(tmp_path, "", "empty")):
        with pytest.raises(CredentialError, match="file") as caught:
            make(sim, clock, path).current()
        assert caught.value.code == "auth_token_file"
    assert service_requests(sim, flow) == 0


# -- what each flow sends ------------------------------------------------------------------


def test_idp_federation_asks_iam_for_keys_with_the_unscoped_token(sim, clock, tmp_path):
    provider = idp(sim, clock, token_file(tmp_path, DEMO_ID_TOKEN))
    provider.current()
    (unscoped,) = sim.identity.unscoped_tokens
    assert unscoped in provider.secrets()
    assert provider.requests_sent() == {"201": 2}


def test_idp_federation_with_an_unknown_identity_provider(sim, clock, tmp_path):
    provider = IdpFederationProvider(
        sim.url,
        "another-idp",
        token_file(tmp_path, DEMO_ID_TOKEN),
        session=requests.Session(),
        clock=clock,
    )
    with pytest.raises(RefusedCredentials, match="identity provider") as caught:
        provider.current()
    assert caught.value.status == 404


def test_oidc_sts_sends_the_session_name_and_duration(sim, clock, tmp_path):
    provider = OidcStsProvider(
        sim.url,
        DEMO_OIDC_PROVIDER_URN,
        DEMO_OIDC_AGENCY_URN,
        id_token=SecretStr(DEMO_ID_TOKEN),  # HUAWEICLOUD_OIDC_ID_TOKEN: no file at all
        session_name="modelarts-exporter",
        duration=900,
        session=requests.Session(),
        clock=clock,
    )
    provider.current()
    assert sim.identity.sessions == [
        {
            "provider_urn": DEMO_OIDC_PROVIDER_URN,
            "agency_urn": DEMO_OIDC_AGENCY_URN,
            "agency_session_name": "modelarts-exporter",
            "duration_seconds": 900,
        }
    ]
    clock.now += 900 / 2 + 1  # short-lived keys: renewed at half their life
    provider.current()
    assert sim.stats.sts_requests == 2


def test_oidc_sts_for_an_agency_that_does_not_trust_the_provider(sim, clock, tmp_path):
    provider = OidcStsProvider(
        sim.url,
        DEMO_OIDC_PROVIDER_URN,
        "iam::0a1b:agency:another",
        id_token_file=token_file(tmp_path, DEMO_ID_TOKEN),
        session=requests.Session(),
        clock=clock,
    )
    with pytest.raises(RefusedCredentials, match="does not trust") as caught:
        provider.current()
    assert caught.value.status == 403 and caught.value.code == "STS.0403"


# -- the ECS metadata service's session tokens ---------------------------------------------


def ecs(sim: Simulator, clock: Clock) -> EcsAgencyProvider:
    return EcsAgencyProvider(
        sim.url + METADATA_PATH, session=requests.Session(), clock=clock, project_id=DEMO_PROJECT_ID
    )


def test_the_token_url_is_on_the_metadata_host():
    assert token_url("http://169.254.169.254/openstack/latest/securitykey") == (
        "http://169.254.169.254/meta-data/latest/api/token"
    )
    assert token_url("http://127.0.0.1:8080/custom/keys") == (
        "http://127.0.0.1:8080/meta-data/latest/api/token"
    )


def test_a_session_token_is_asked_for_then_sent_with_each_request_for_keys(sim, clock):
    sim.identity.metadata_tokens = "required"
    provider = ecs(sim, clock)
    client = client_for(sim, provider, clock)
    client.list_instances()
    clock.now += LIFETIME - 500
    client.list_instances()  # new keys, with the same session token
    assert (sim.stats.metadata_token_requests, sim.stats.metadata_requests) == (1, 2)
    (session,) = sim.identity.metadata_sessions
    assert session in provider.secrets()
    assert provider.requests_sent() == {"200": 3}


def test_a_service_without_session_tokens_is_asked_without_one(sim, clock):
    sim.identity.metadata_tokens = "unsupported"  # 404 to the PUT, as an older service
    provider = ecs(sim, clock)
    client = client_for(sim, provider, clock)
    client.list_instances()
    clock.now += LIFETIME - 500
    client.list_instances()
    assert (sim.stats.metadata_token_requests, sim.stats.metadata_requests) == (1, 2)
    assert provider.requests_sent() == {"404": 1, "200": 2}


def test_an_expired_session_token_is_replaced_once(sim, clock):
    sim.identity.metadata_tokens = "required"
    provider = ecs(sim, clock)
    provider.current()
    sim.identity.metadata_sessions.clear()  # the service forgot it
    provider.renew()
    provider.current()
    assert (sim.stats.metadata_token_requests, sim.stats.metadata_requests) == (2, 3)


@pytest.mark.parametrize("status", [404, 405, 503])
@responses.activate
def test_the_tokenless_fallback_follows_the_vendor(status, clock):
    keys_url = "http://127.0.0.1:1/openstack/latest/securitykey"  # mocked, never contacted
    responses.put(token_url(keys_url), status=status)
    credential = {
        "access": "TMPAK",
        "secret": "tmp-secret",
        "securitytoken": "tmp-token",
        "expires_at": "2099-01-01T00:00:00.000000Z",
    }
    responses.get(keys_url, json={"credential": credential})
    EcsAgencyProvider(keys_url, session=requests.Session(), clock=clock).current()
    assert "X-Metadata-Token" not in responses.calls[1].request.headers


@responses.activate
def test_an_unexpected_answer_to_the_token_request_is_an_error(clock):
    keys_url = "http://127.0.0.1:1/openstack/latest/securitykey"
    responses.put(token_url(keys_url), status=403, json={"message": "forbidden"})
    with pytest.raises(RefusedCredentials, match="metadata token refused"):
        EcsAgencyProvider(keys_url, session=requests.Session(), clock=clock).current()


@responses.activate
def test_no_agency_is_not_answered_with_a_new_session_token(clock):
    keys_url = "http://127.0.0.1:1/openstack/latest/securitykey"
    responses.put(token_url(keys_url), body="session")
    responses.get(keys_url, status=401, body="Please configure Cloud Service Agency first")
    with pytest.raises(RefusedCredentials, match="metadata service refused"):
        EcsAgencyProvider(keys_url, session=requests.Session(), clock=clock).current()
    assert [c.request.method for c in responses.calls] == ["PUT", "GET"]


# -- temporary credentials in every shape the vendor reads ----------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        {"credential": {"access": "A", "secret": "S", "securitytoken": "T", "expires_at": "E"}},
        {
            "credentials": {
                "access_key_id": "A",
                "secret_access_key": "S",
                "security_token": "T",
                "expiration": "E",
            }
        },
        {"accessKeyId": "A", "secretAccessKey": "S", "securityToken": "T", "expiration": "E"},
    ],
    ids=["iam", "sts-v5", "camel"],
)
@responses.activate
def test_pod_identity_reads_every_shape_of_temporary_credentials(doc, clock, tmp_path):
    uri = "http://127.0.0.1:1/v1/pod-identity/credentials"  # mocked, never contacted
    text = json.dumps(doc).replace('"E"', '"2099-01-01T00:00:00.000000Z"')
    responses.post(uri, body=text)
    provider = PodIdentityProvider(
        uri, token_file(tmp_path, "pod-token"), session=requests.Session(), clock=clock
    )
    provider.current()
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "pod-token"
    assert json.loads(request.body) == {}
    assert {"pod-token", "S", "T"} <= set(provider.secrets())
