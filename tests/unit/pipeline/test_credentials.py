"""Which credential provider the settings choose, what they demand, the order of `auto`,
the vendor SDK's credentials file, and the project id looked up by region."""

from __future__ import annotations

import time

import pytest
import requests
from pydantic import SecretStr

from exporter.config.command_line import build_parser, load_settings
from exporter.config.settings import SettingsError
from exporter.modelarts.auth.aksk import AkSkProvider
from exporter.modelarts.auth.ecs import EcsAgencyProvider
from exporter.modelarts.auth.iam import IamPasswordProvider
from exporter.modelarts.auth.idp import IdpFederationProvider
from exporter.modelarts.auth.oidc import OidcStsProvider
from exporter.modelarts.auth.pod import PodIdentityProvider
from exporter.modelarts.auth.profile import CredentialsFileProvider
from exporter.modelarts.auth.token import StaticTokenProvider
from exporter.pipeline.credentials import build_provider

BASE = "https://modelarts.cn-north-4.myhuaweicloud.com"
IAM = "https://iam.cn-north-4.myhuaweicloud.com"
METADATA = "http://127.0.0.1:1/openstack/latest/securitykey"  # never contacted: mocked
PROJECT = "p1"
LIST_URL = f"{BASE}/v1/{PROJECT}/demanager/instances"
TOKEN_URL = f"{IAM}/v3/auth/tokens"
PASSWORD = "iam-password-secret-1"
START = 1_800_000_000.0
LIST_OK = {"total_count": 1, "instances": [{"id": "a", "status": "RUNNING"}]}
IDP = {"HUAWEICLOUD_SDK_IDP_ID": "cce-oidc", "HUAWEICLOUD_SDK_ID_TOKEN_FILE": "/var/run/token"}
OIDC = {
    "HUAWEICLOUD_OIDC_PROVIDER_URN": "iam::1:identity-provider:cce",
    "HUAWEICLOUD_OIDC_AGENCY_URN": "iam::1:agency:reader",
    "HUAWEICLOUD_OIDC_TOKEN_FILE": "/var/run/token",
}
POD = {
    "HC_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.2/v1/credentials",
    "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/var/run/pod-token",
}


# -- choosing the provider -------------------------------------------------------------


@pytest.fixture
def env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith(("HUAWEICLOUD_", "MODELARTS_EXPORTER_", "HC_CONTAINER_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", "/nonexistent-home")  # no ~/.huaweicloud/credentials
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGION", "cn-north-4")
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT)
    return monkeypatch


def settings(*argv: str):
    return load_settings(vars(build_parser().parse_args(list(argv))))


@pytest.mark.parametrize(
    ("variables", "argv", "expected"),
    [
        ({"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "SK"}, [], AkSkProvider),
        (
            {
                "MODELARTS_EXPORTER_IAM_USERNAME": "u",
                "MODELARTS_EXPORTER_IAM_PASSWORD": "p",
                "MODELARTS_EXPORTER_IAM_DOMAIN": "d",
            },
            [],
            IamPasswordProvider,
        ),
        ({"MODELARTS_EXPORTER_AUTH_TOKEN": "t"}, [], StaticTokenProvider),
        ({}, ["--auth.mode", "ecs"], EcsAgencyProvider),
        (
            {"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "SK"},
            ["--auth.mode", "ecs"],
            EcsAgencyProvider,
        ),
        ({}, [], EcsAgencyProvider),  # nothing configured: the metadata service, last
        (IDP, [], IdpFederationProvider),
        (
            {**IDP, "HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "SK"},
            [],
            IdpFederationProvider,
        ),
        (OIDC, [], OidcStsProvider),
        (
            {**OIDC, **IDP, "HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "SK"},
            [],
            OidcStsProvider,
        ),
        (POD, [], PodIdentityProvider),
        ({**POD, "HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "SK"}, [], AkSkProvider),
        ({**POD, "HUAWEICLOUD_SDK_AK": "AK"}, ["--auth.mode", "pod-identity"], PodIdentityProvider),
        (
            {"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "SK"},
            ["--auth.mode", "credentials-file", "--auth.credentials-file", "{profile}"],
            CredentialsFileProvider,
        ),
        ({"HUAWEICLOUD_SDK_CREDENTIALS_FILE": "{profile}", **POD}, [], CredentialsFileProvider),
    ],
)
def test_the_provider_follows_what_is_configured(env, variables, argv, expected, tmp_path):
    profile = tmp_path / "credentials"
    profile.write_text("[basic]\nak = FILEAK\nsk = file-sk\n")
    for name, value in variables.items():
        env.setenv(name, value.format(profile=profile))
    argv = tuple(a.format(profile=profile) for a in argv)
    assert type(build_provider(settings(*argv))) is expected


def test_the_order_of_auto_is_the_vendor_chain(env, tmp_path):
    """OIDC STS, the environment (IdP federation, then keys), the credentials file, pod
    identity, the ECS metadata service: each found only when those before it are not."""
    profile = tmp_path / "credentials"
    profile.write_text("[basic]\nak = FILEAK\nsk = file-sk\n")
    layers = [
        (POD, "pod-identity"),
        ({"HUAWEICLOUD_SDK_CREDENTIALS_FILE": str(profile)}, "credentials-file"),
        ({"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "SK"}, "aksk"),
        (IDP, "idp"),
        (OIDC, "oidc-sts"),
    ]
    assert settings().effective_auth_mode == "ecs"
    for variables, mode in layers:
        for name, value in variables.items():
            env.setenv(name, value)
        assert settings().effective_auth_mode == mode


def test_the_default_credentials_file_is_found_in_home(env, tmp_path):
    (tmp_path / ".huaweicloud").mkdir()
    (tmp_path / ".huaweicloud" / "credentials").write_text("[basic]\nak = A1\nsk = S1\n")
    env.setenv("HOME", str(tmp_path))
    chosen = settings()
    assert chosen.effective_auth_mode == "credentials-file"
    assert chosen.credentials_file_path == str(tmp_path / ".huaweicloud" / "credentials")
    provider = build_provider(chosen)
    assert provider.mode == "credentials-file" and {"A1", "S1"} <= set(provider.secrets())


@pytest.mark.parametrize(
    ("variables", "argv", "named"),
    [
        ({}, ["--auth.mode", "aksk"], "HUAWEICLOUD_SDK_AK"),
        ({"HUAWEICLOUD_SDK_IDP_ID": "idp"}, [], "HUAWEICLOUD_SDK_ID_TOKEN_FILE"),
        ({}, ["--auth.mode", "idp"], "HUAWEICLOUD_SDK_IDP_ID"),
        ({"HUAWEICLOUD_OIDC_PROVIDER_URN": "urn"}, [], "HUAWEICLOUD_OIDC_AGENCY_URN"),
        (
            {"HUAWEICLOUD_OIDC_PROVIDER_URN": "urn", "HUAWEICLOUD_OIDC_AGENCY_URN": "urn"},
            [],
            "HUAWEICLOUD_OIDC_TOKEN_FILE",
        ),
        (
            {**OIDC, "HUAWEICLOUD_OIDC_DURATION_SECONDS": "60"},
            [],
            "HUAWEICLOUD_OIDC_DURATION_SECONDS",
        ),
        (
            {"HC_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/c"},
            [],
            "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        ),
        ({**POD, "HC_CONTAINER_CREDENTIALS_FULL_URI": "ftp://x"}, [], "HC_CONTAINER_CREDENTIALS"),
        ({"HUAWEICLOUD_SDK_CREDENTIALS_FILE": "/nonexistent/credentials"}, [], "cannot read"),
        ({}, ["--auth.mode", "credentials-file"], "/nonexistent-home/.huaweicloud/credentials"),
        ({"MODELARTS_EXPORTER_IAM_USERNAME": "u"}, [], "MODELARTS_EXPORTER_IAM_PASSWORD"),
        (
            {"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "SK"},
            ["--auth.mode", "iam"],
            "MODELARTS_EXPORTER_IAM_USERNAME",
        ),
        ({}, ["--auth.mode", "token"], "MODELARTS_EXPORTER_AUTH_TOKEN"),
    ],
)
def test_missing_credentials_are_named(env, variables, argv, named):
    for name, value in variables.items():
        env.setenv(name, value)
    with pytest.raises(SettingsError, match=named):
        settings(*argv)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("ak = A\n", "not an INI file"),
        ("[global]\nak = A\nsk = S\n", "has no [basic] section"),
        ("[basic]\nak = A\n", "neither ak and sk nor idp_id and id_token_file"),
        ("[basic]\nidp_id = i\n", "neither ak and sk nor idp_id and id_token_file"),
        ("[basic]\nak = A\nsk = S\niam_endpoint = iam.example\n", "iam_endpoint"),
    ],
)
def test_an_unusable_credentials_file_is_named(env, tmp_path, content, problem):
    path = tmp_path / "credentials"
    path.write_text(content)
    env.setenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE", str(path))
    with pytest.raises(SettingsError) as caught:
        settings()
    text = str(caught.value)
    assert "HUAWEICLOUD_SDK_CREDENTIALS_FILE" in text and problem in text and str(path) in text
    assert "\n" not in text


def test_the_credentials_file_as_the_vendor_sdk_writes_it(env, tmp_path):
    path = tmp_path / "credentials"
    path.write_text(
        "[basic]\n"
        "ak = FILEAK\nsk = file-sk\nsecurity_token = file-token\n"
        "project_id = 0123456789abcdef0123456789abcdef\n"
        "iam_endpoint = https://iam.example.test\n"
        "[global]\nak = OTHER\nsk = other\n"
    )
    env.delenv("HUAWEICLOUD_SDK_PROJECT_ID")
    env.setenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE", str(path))
    chosen = settings()
    profile = chosen.profile()
    assert profile.project_id == "0123456789abcdef0123456789abcdef"
    assert profile.iam_endpoint == "https://iam.example.test"
    provider = build_provider(chosen)
    assert isinstance(provider, CredentialsFileProvider)
    assert isinstance(provider.inner, AkSkProvider)
    assert {"FILEAK", "file-sk", "file-token"} <= set(provider.secrets())
    assert "file-sk" not in repr(provider) and "FILEAK" not in repr(provider)


def test_idp_federation_in_the_credentials_file_wins_over_its_keys(env, tmp_path):
    path = tmp_path / "credentials"
    token = tmp_path / "id-token"
    token.write_text("id-token")
    path.write_text(
        f"[basic]\nak = FILEAK\nsk = file-sk\nidp_id = cce\nid_token_file = {token}\n"
        "iam_endpoint = https://iam.example.test\n"
    )
    env.setenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE", str(path))
    provider = build_provider(settings())
    assert isinstance(provider, CredentialsFileProvider)
    assert isinstance(provider.inner, IdpFederationProvider)
    assert provider.inner.iam_url == "https://iam.example.test"  # the file's IAM endpoint


def test_reprs_hide_every_secret():

    providers = [
        AkSkProvider(SecretStr("AKVALUE"), SecretStr("SKVALUE"), SecretStr("TOKENVALUE")),
        StaticTokenProvider(SecretStr("TOKENVALUE")),
        IamPasswordProvider(
            IAM,
            "u",
            SecretStr("PASSWORDVALUE"),
            "d",
            "p",
            session=requests.Session(),
            clock=time.time,
        ),
    ]
    for provider in providers:
        text = repr(provider)
        assert not any(s in text for s in ("AKVALUE", "SKVALUE", "TOKENVALUE", "PASSWORDVALUE"))
