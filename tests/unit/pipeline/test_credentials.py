"""Which credential provider the settings choose, and what they demand."""

from __future__ import annotations

import time

import pytest
import requests
from pydantic import SecretStr

from exporter.config.settings import SettingsError, build_parser, load_settings
from exporter.modelarts.auth.aksk import AkSkProvider
from exporter.modelarts.auth.ecs import EcsAgencyProvider
from exporter.modelarts.auth.iam import IamPasswordProvider
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


# -- choosing the provider -------------------------------------------------------------


@pytest.fixture
def env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith(("HUAWEICLOUD_", "MODELARTS_EXPORTER_")):
            monkeypatch.delenv(name)
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
    ],
)
def test_the_provider_follows_what_is_configured(env, variables, argv, expected):
    for name, value in variables.items():
        env.setenv(name, value)
    assert type(build_provider(settings(*argv))) is expected


@pytest.mark.parametrize(
    ("variables", "argv", "named"),
    [
        ({}, [], "--auth.mode"),
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
