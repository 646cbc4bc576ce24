"""Credentials from the settings: the provider of the auth mode asked for or implied."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests
from pydantic import SecretStr

from exporter.config.settings import Settings
from exporter.modelarts.auth.aksk import AkSkProvider
from exporter.modelarts.auth.ecs import EcsAgencyProvider
from exporter.modelarts.auth.iam import IamPasswordProvider
from exporter.modelarts.auth.provider import CredentialProvider
from exporter.modelarts.auth.token import StaticTokenProvider

__all__ = ["CredentialProvider", "build_provider"]


def build_provider(
    settings: Settings, clock: Callable[[], float] = time.time
) -> CredentialProvider:
    """The provider for the settings' auth mode (settings have checked what it needs)."""
    mode = settings.effective_auth_mode
    if mode == "token":
        return StaticTokenProvider(settings.auth_token or SecretStr(""))
    if mode == "iam":
        return IamPasswordProvider(
            settings.iam_base_url,
            settings.iam_username,
            settings.iam_password or SecretStr(""),
            settings.iam_domain,
            settings.project_id,
            session=requests.Session(),
            timeout=settings.request_timeout,
            clock=clock,
        )
    if mode == "ecs":
        session = requests.Session()
        session.trust_env = False  # the link-local metadata service is never behind a proxy
        return EcsAgencyProvider(
            settings.metadata_url, session=session, clock=clock, project_id=settings.project_id
        )
    return AkSkProvider(
        settings.ak or SecretStr(""),
        settings.sk or SecretStr(""),
        settings.security_token,
        project_id=settings.project_id,
    )
