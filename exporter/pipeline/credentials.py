"""Credentials from the settings: the provider of the auth mode asked for or implied, and
the project id of the region when none is configured."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

import requests
from pydantic import SecretStr

from exporter.config.settings import Settings
from exporter.modelarts.auth.aksk import AkSkProvider
from exporter.modelarts.auth.ecs import EcsAgencyProvider
from exporter.modelarts.auth.iam import IamPasswordProvider
from exporter.modelarts.auth.idp import IdpFederationProvider
from exporter.modelarts.auth.oidc import OidcStsProvider
from exporter.modelarts.auth.pod import PodIdentityProvider
from exporter.modelarts.auth.profile import CredentialsFileProvider, Profile
from exporter.modelarts.auth.project import ProjectNotFound, lookup_project_id
from exporter.modelarts.auth.provider import CredentialProvider
from exporter.modelarts.auth.token import StaticTokenProvider
from exporter.modelarts.errors import CredentialError

__all__ = [
    "CredentialProvider",
    "ProjectLookupError",
    "build_provider",
    "resolve_project_id",
    "resolve_projects",
]

log = logging.getLogger(__name__)


def build_provider(
    settings: Settings, clock: Callable[[], float] = time.time
) -> CredentialProvider:
    """The provider for the settings' auth mode (settings have checked what it needs)."""
    mode = settings.effective_auth_mode
    project_id = settings.project_id
    if mode == "token":
        return StaticTokenProvider(settings.auth_token or SecretStr(""))
    if mode == "iam":
        return IamPasswordProvider(
            settings.iam_base_url,
            settings.iam_username,
            settings.iam_password or SecretStr(""),
            settings.iam_domain,
            project_id,
            project_name=settings.region,
            session=requests.Session(),
            timeout=settings.request_timeout,
            clock=clock,
        )
    if mode == "ecs":
        return EcsAgencyProvider(
            settings.metadata_url, session=_local_session(), clock=clock, project_id=project_id
        )
    if mode == "idp":
        return IdpFederationProvider(
            settings.iam_base_url,
            settings.idp_id,
            settings.id_token_file,
            session=requests.Session(),
            timeout=settings.request_timeout,
            clock=clock,
            project_id=project_id,
        )
    if mode == "oidc-sts":
        return OidcStsProvider(
            settings.sts_base_url,
            settings.oidc_provider_urn,
            settings.oidc_agency_urn,
            id_token=settings.oidc_id_token,
            id_token_file=settings.oidc_token_file,
            session_name=settings.oidc_session_name,
            duration=settings.oidc_duration_seconds,
            session=requests.Session(),
            timeout=settings.request_timeout,
            clock=clock,
            project_id=project_id,
        )
    if mode == "pod-identity":
        return PodIdentityProvider(
            settings.pod_identity_uri,
            settings.pod_identity_token_file,
            session=_local_session(),
            timeout=settings.request_timeout,
            clock=clock,
            project_id=project_id,
        )
    if mode == "credentials-file":
        return _from_profile(settings, settings.profile(), clock)
    return AkSkProvider(
        settings.ak or SecretStr(""),
        settings.sk or SecretStr(""),
        settings.security_token,
        project_id=project_id,
    )


def _from_profile(
    settings: Settings, profile: Profile, clock: Callable[[], float]
) -> CredentialProvider:
    """The vendor SDK's credentials file: IdP federation when it names an idp_id and an
    id_token_file (the SDK's precedence), else its keys."""
    project_id = settings.project_id or profile.project_id
    inner: CredentialProvider
    if profile.federated:
        inner = IdpFederationProvider(
            iam_url(settings, profile),
            profile.idp_id,
            profile.id_token_file,
            session=requests.Session(),
            timeout=settings.request_timeout,
            clock=clock,
            project_id=project_id,
        )
    else:
        inner = AkSkProvider(
            profile.ak or SecretStr(""),
            profile.sk or SecretStr(""),
            profile.security_token,
            project_id=project_id,
        )
    return CredentialsFileProvider(profile, inner)


def iam_url(settings: Settings, profile: Profile | None = None) -> str:
    """IAM: the one configured, else the credentials file's, else the region's."""
    if settings.iam_endpoint or profile is None or not profile.iam_endpoint:
        return settings.iam_base_url
    return profile.iam_endpoint


def _local_session() -> requests.Session:
    """For the link-local metadata service and pod identity agent: never behind a proxy."""
    session = requests.Session()
    session.trust_env = False
    return session


_resolved: dict[Settings, str] = {}
_resolved_lock = threading.Lock()


def resolve_project_id(settings: Settings, clock: Callable[[], float] = time.time) -> str:
    """The project id: the configured one, the credentials file's, or the region's looked
    up in IAM once (`GET {iam}/v3/projects?name=<region>`, signed with the credentials;
    kept for this process, as the vendor SDK keeps it). ProjectNotFound when the region has
    no single project for the credentials, CredentialError when IAM cannot say."""
    if settings.project_id:
        return settings.project_id
    profile = settings.profile() if settings.effective_auth_mode == "credentials-file" else None
    if profile is not None and profile.project_id:
        return profile.project_id
    with _resolved_lock:
        if settings in _resolved:
            return _resolved[settings]
    provider = build_provider(settings, clock)
    url = iam_url(settings, profile)
    project_id = lookup_project_id(url, settings.region, provider, timeout=settings.request_timeout)
    log.info(
        "project id of region %s: %s (looked up in IAM at %s with auth mode %s)",
        settings.region,
        project_id,
        url,
        settings.effective_auth_mode,
    )
    with _resolved_lock:
        _resolved[settings] = project_id
    return project_id


class ProjectLookupError(Exception):
    """A project id could not be looked up; `str()` is one line naming the region.
    `exit_status`: 2 when the region has no single project for the credentials (a setting
    to fix), 1 when IAM refused or could not be asked (a restart may do)."""

    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status


def resolve_projects(
    targets: Mapping[str, Settings], clock: Callable[[], float] = time.time
) -> dict[str, Settings]:
    """Each target with its project id, looked up where none is configured."""
    resolved: dict[str, Settings] = {}
    for name, settings in targets.items():
        if settings.project_id:
            resolved[name] = settings
            continue
        where = f"target {name}: " if name else ""
        try:
            project_id = resolve_project_id(settings, clock)
        except ProjectNotFound as err:
            raise ProjectLookupError(f"{where}{err}", 2) from None
        except CredentialError as err:
            raise ProjectLookupError(
                f"{where}cannot look up the project id of region {settings.region}: {err}", 1
            ) from None
        resolved[name] = settings.model_copy(update={"project_id": project_id})
    return resolved
