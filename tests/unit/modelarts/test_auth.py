"""Credential providers: IAM password tokens, ECS agency keys, static tokens, AK/SK.

IAM and the metadata service are mocked with `responses` (the providers' own requests
sessions); the list calls they sign go to the `canned` loopback server.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone

import pytest
import requests
import responses
from pydantic import SecretStr

from exporter.modelarts.auth.aksk import AkSkProvider
from exporter.modelarts.auth.ecs import EcsAgencyProvider
from exporter.modelarts.auth.iam import IamPasswordProvider
from exporter.modelarts.auth.provider import CredentialProvider
from exporter.modelarts.auth.token import StaticTokenProvider
from exporter.modelarts.client import ModelArtsClient
from exporter.modelarts.errors import ApiError
from exporter.pipeline.cache import SnapshotCache
from tests.support.canned import Canned, Request

IAM = "https://iam.cn-north-4.myhuaweicloud.com"
METADATA = "http://127.0.0.1:1/openstack/latest/securitykey"  # never contacted: mocked
METADATA_TOKEN = "http://127.0.0.1:1/meta-data/latest/api/token"
PROJECT = "p1"
LIST_PATH = f"/v1/{PROJECT}/demanager/instances"
TOKEN_URL = f"{IAM}/v3/auth/tokens"
PASSWORD = "iam-password-secret-1"
START = 1_800_000_000.0
LIST_OK = {"total_count": 1, "instances": [{"id": "a", "status": "RUNNING"}]}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeIam:
    """IAM and the metadata service behind `responses`, handing out numbered credentials."""

    def __init__(self, clock: Clock, lifetime: float = 86400) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.issued: list[str] = []
        self.bodies: list[dict[str, object]] = []

    def token(self, request):
        self.bodies.append(json.loads(request.body))
        self.issued.append(f"token-{len(self.issued) + 1}")
        body = {"token": {"expires_at": iso(self.clock() + self.lifetime)}}
        return (201, {"X-Subject-Token": self.issued[-1]}, json.dumps(body))

    def keys(self, request):
        self.issued.append(f"TMPAK{len(self.issued) + 1}")
        credential = {
            "access": self.issued[-1],
            "secret": "temporary-secret",
            "securitytoken": "temporary-security-token",
            "expires_at": iso(self.clock() + self.lifetime),
        }
        return (200, {}, json.dumps({"credential": credential}))


def iam_provider(clock: Clock) -> IamPasswordProvider:

    return IamPasswordProvider(
        IAM, "ops", SecretStr(PASSWORD), "acme", PROJECT, session=requests.Session(), clock=clock
    )


def ecs_provider(clock: Clock) -> EcsAgencyProvider:

    return EcsAgencyProvider(METADATA, session=requests.Session(), clock=clock)


def client_for(canned: Canned, provider: CredentialProvider, clock: Clock) -> ModelArtsClient:
    return ModelArtsClient(
        canned.url, PROJECT, provider, api="demanager", page_size=0, clock=clock, sleep=clock.sleep
    )


def list_calls(canned: Canned) -> list[Request]:
    return [r for r in canned.requests if r.path == LIST_PATH]


def auth_calls() -> list[responses.Call]:
    return list(responses.calls)  # the list calls go to `canned`


# -- IAM password tokens ---------------------------------------------------------------


@responses.activate
def test_iam_token_is_fetched_once_scoped_to_the_project_and_sent(canned):
    clock = Clock()
    iam = FakeIam(clock)
    responses.add_callback(responses.POST, TOKEN_URL, callback=iam.token)
    canned.get(LIST_PATH, json=LIST_OK)
    client = client_for(canned, iam_provider(clock), clock)
    client.list_instances()
    client.list_instances()
    assert len(auth_calls()) == 1
    assert [r.headers["X-Auth-Token"] for r in list_calls(canned)] == ["token-1", "token-1"]
    auth = iam.bodies[0]["auth"]
    assert auth["scope"] == {"project": {"id": PROJECT}}  # type: ignore[index]
    user = auth["identity"]["password"]["user"]  # type: ignore[index]
    assert user == {"name": "ops", "password": PASSWORD, "domain": {"name": "acme"}}
    assert client.telemetry().auth_requests == {"201": 1}


@responses.activate
def test_iam_token_is_renewed_shortly_before_it_expires(canned):
    clock = Clock()
    iam = FakeIam(clock, lifetime=3600)
    responses.add_callback(responses.POST, TOKEN_URL, callback=iam.token)
    canned.get(LIST_PATH, json=LIST_OK)
    client = client_for(canned, iam_provider(clock), clock)
    client.list_instances()
    clock.now += 2900  # 700 s left: still good
    client.list_instances()
    clock.now += 200  # 500 s left: renewed
    client.list_instances()
    assert [r.headers["X-Auth-Token"] for r in list_calls(canned)] == [
        "token-1",
        "token-1",
        "token-2",
    ]


@responses.activate
def test_a_401_is_answered_by_one_renewal(canned):
    clock = Clock()
    iam = FakeIam(clock)
    responses.add_callback(responses.POST, TOKEN_URL, callback=iam.token)
    canned.get(
        LIST_PATH, status=401, json={"error_code": "APIG.0301", "error_msg": "token expires"}
    )
    canned.get(LIST_PATH, json=LIST_OK)
    listing = client_for(canned, iam_provider(clock), clock).list_instances()
    assert [i.id for i in listing.instances] == ["a"]
    assert [r.headers["X-Auth-Token"] for r in list_calls(canned)] == ["token-1", "token-2"]


@responses.activate
def test_a_403_is_a_missing_permission_not_an_expired_token(canned):
    clock = Clock()
    iam = FakeIam(clock)
    responses.add_callback(responses.POST, TOKEN_URL, callback=iam.token)
    canned.get(LIST_PATH, status=403, json={"error_code": "ModelArts.0203", "error_msg": "no"})
    with pytest.raises(
        ApiError, match="permission denied: the credentials need modelarts:notebook:list"
    ):
        client_for(canned, iam_provider(clock), clock).list_instances()
    assert len(auth_calls()) == 1 and len(list_calls(canned)) == 1  # no renewal, no second try


@responses.activate
def test_repeated_401_renews_once_per_refresh_then_backs_off(canned):
    clock = Clock()
    iam = FakeIam(clock)
    responses.add_callback(responses.POST, TOKEN_URL, callback=iam.token)
    canned.get(
        LIST_PATH, status=401, json={"error_code": "APIG.0301", "error_msg": "token expires"}
    )
    client = client_for(canned, iam_provider(clock), clock)
    with pytest.raises(ApiError):
        client.list_instances()
    assert (len(list_calls(canned)), len(auth_calls())) == (2, 2)  # one renewal, no loop
    counts = one_hour_of_scrapes(canned, client, clock)
    print(f"[one hour of 401s] ModelArts {counts['modelarts']}, IAM {counts['auth']}")
    assert counts["modelarts"] < 20 and counts["auth"] < 20  # backed off, not 240 + 240


@pytest.mark.parametrize(
    ("status", "headers", "body", "message"),
    [
        (201, {}, {"token": {"expires_at": "2030-01-01T00:00:00Z"}}, "X-Subject-Token"),
        (201, {"X-Subject-Token": "t"}, {"token": {"expires_at": "soon"}}, "expires_at"),
        (201, {"X-Subject-Token": "t"}, "<html>", "not JSON"),
        (
            401,
            {},
            {
                "error": {
                    "code": 401,
                    "title": "Unauthorized",
                    "message": "The username or password is wrong.",
                }
            },
            "password is wrong",
        ),
    ],
)
@responses.activate
def test_bad_iam_answers_give_a_clear_error(canned, status, headers, body, message):
    payload = body if isinstance(body, str) else json.dumps(body)
    responses.post(TOKEN_URL, status=status, headers=headers, body=payload)
    canned.get(LIST_PATH, json=LIST_OK)
    with pytest.raises(ApiError, match=message) as caught:
        client_for(canned, iam_provider(Clock()), Clock()).list_instances()
    assert PASSWORD not in str(caught.value)
    assert not list_calls(canned)
    assert len(auth_calls()) == 1  # a refused password is never sent twice in a refresh


# -- ECS agency keys -------------------------------------------------------------------


@responses.activate
def test_ecs_keys_sign_requests_with_the_security_token_and_are_refreshed(canned):
    clock = Clock()
    iam = FakeIam(clock, lifetime=3600)
    responses.add_callback(responses.GET, METADATA, callback=iam.keys)
    responses.put(METADATA_TOKEN, body="metadata-session-token")
    canned.get(LIST_PATH, json=LIST_OK)
    client = client_for(canned, ecs_provider(clock), clock)
    client.list_instances()
    clock.now += 3100
    client.list_instances()
    keys = [c.request for c in responses.calls if c.request.url == METADATA]
    assert [r.headers["X-Metadata-Token"] for r in keys] == ["metadata-session-token"] * 2
    access = [r.headers["Authorization"].split(",")[0] for r in list_calls(canned)]
    assert access == ["SDK-HMAC-SHA256 Access=TMPAK1", "SDK-HMAC-SHA256 Access=TMPAK2"]
    request = list_calls(canned)[0]
    assert request.headers["X-Security-Token"] == "temporary-security-token"
    assert "x-security-token" in request.headers["Authorization"]
    # The signature date follows the provider's clock, not the machine's.
    assert request.headers["X-Sdk-Date"] == datetime.fromtimestamp(START, timezone.utc).strftime(
        "%Y%m%dT%H%M%SZ"
    )


@pytest.mark.parametrize(
    "body",
    [
        '{"credential": {"access": "a"}}',
        "not json",
        json.dumps(
            {"credential": {"access": "a", "secret": "s", "securitytoken": "t", "expires_at": "x"}}
        ),
    ],
)
@responses.activate
def test_bad_metadata_answers_give_a_clear_error(canned, body):
    responses.get(METADATA, body=body)
    with pytest.raises(ApiError, match="metadata"):
        client_for(canned, ecs_provider(Clock()), Clock()).list_instances()


@responses.activate
def test_an_unreachable_metadata_service_is_an_error_not_a_crash(canned):
    responses.get(METADATA, body=requests.ConnectionError("no route"))
    with pytest.raises(ApiError, match="unreachable"):
        client_for(canned, ecs_provider(Clock()), Clock()).list_instances()


# -- static token and AK/SK ------------------------------------------------------------


@responses.activate
def test_a_static_token_is_sent_and_a_401_is_not_retried(canned):
    canned.get(
        LIST_PATH, status=401, json={"error_code": "APIG.0301", "error_msg": "token expires"}
    )
    client = client_for(canned, StaticTokenProvider(SecretStr("static-token-value")), Clock())
    with pytest.raises(ApiError):
        client.list_instances()
    assert len(list_calls(canned)) == 1
    assert list_calls(canned)[0].headers["X-Auth-Token"] == "static-token-value"


# -- one hour of 15 s scrapes -----------------------------------------------------------


def one_hour_of_scrapes(
    canned: Canned, client: ModelArtsClient, clock: Clock, ttl: float = 30
) -> Counter[str]:
    """Requests reaching ModelArts and IAM/metadata during an hour of scrapes every 15 s."""
    cache = SnapshotCache(PROJECT, client.list_instances, ttl=ttl, max_staleness=300, clock=clock)
    before_list, before_auth = len(list_calls(canned)), len(auth_calls())
    end = clock.now + 3600
    while clock.now < end:
        cache.status()
        clock.now += 15
    return Counter(
        modelarts=len(list_calls(canned)) - before_list, auth=len(auth_calls()) - before_auth
    )


@pytest.mark.parametrize("mode", ["aksk", "iam", "ecs", "token"])
@responses.activate
def test_requests_in_one_hour_of_scrapes(canned, mode, capsys):
    clock = Clock()
    iam = FakeIam(clock)
    responses.add_callback(responses.POST, TOKEN_URL, callback=iam.token)
    responses.add_callback(responses.GET, METADATA, callback=iam.keys)
    responses.put(METADATA_TOKEN, body="metadata-session-token")
    canned.get(LIST_PATH, json=LIST_OK)
    provider = {
        "aksk": lambda: AkSkProvider(SecretStr("AK"), SecretStr("SK")),
        "iam": lambda: iam_provider(clock),
        "ecs": lambda: ecs_provider(clock),
        "token": lambda: StaticTokenProvider(SecretStr("t")),
    }[mode]()
    counts = one_hour_of_scrapes(canned, client_for(canned, provider, clock), clock)
    with capsys.disabled():
        print(
            f"\n[one hour, 15 s scrapes, TTL 30 s] {mode}: "
            f"ModelArts {counts['modelarts']}, IAM/metadata {counts['auth']}"
        )
    assert counts["modelarts"] == 120  # one listing per TTL window
    # ECS: a session token, then the keys, each once in the hour.
    assert counts["auth"] == {"iam": 1, "ecs": 2}.get(mode, 0)
