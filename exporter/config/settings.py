"""Settings: every one a flag and an environment variable, validated once, then frozen.

Flags win over environment variables, which win over defaults. A secret may also be
read from a file named by `<ENV>_FILE` (Kubernetes Secret volumes, Docker secrets).
A bad or missing setting raises `SettingsError`, which names the flag and the variable
so the CLI can print one line and exit 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from exporter.config.fields import ENV_PREFIX, MissingSetting, parse_listen_address, setting
from exporter.config.series import INFO_LABELS, SeriesOptions
from exporter.config.shard import Shard, parse_shard
from exporter.modelarts.auth.profile import (
    Profile,
    ProfileError,
    default_credentials_file,
    read_profile,
)
from exporter.modelarts.endpoints import iam_endpoint, modelarts_endpoint, sts_endpoint

DEFAULT_PORT = 10200
AuthMode = Literal[
    "auto",
    "aksk",
    "iam",
    "ecs",
    "token",
    "idp",
    "oidc-sts",
    "pod-identity",
    "credentials-file",
]
DEFAULT_LISTEN_ADDRESS = f":{DEFAULT_PORT}"


class Settings(BaseSettings):
    """The exporter's whole configuration; immutable once loaded."""

    model_config = SettingsConfigDict(
        frozen=True,
        populate_by_name=True,
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    # -- where to serve ---------------------------------------------------------------
    web_listen_address: str = setting(
        DEFAULT_LISTEN_ADDRESS,
        "--web.listen-address",
        ENV_PREFIX + "WEB_LISTEN_ADDRESS",
        "host:port to serve on (empty host: all interfaces)",
    )
    web_config_file: str = setting(
        "",
        "--web.config.file",
        ENV_PREFIX + "WEB_CONFIG_FILE",
        "TLS and basic auth, in the Prometheus exporter-toolkit format",
    )
    web_telemetry_path: str = setting(
        "/metrics",
        "--web.telemetry-path",
        ENV_PREFIX + "WEB_TELEMETRY_PATH",
        "path under which metrics are served",
    )
    web_read_timeout: float = setting(
        10.0,
        "--web.read-timeout",
        ENV_PREFIX + "WEB_READ_TIMEOUT",
        "seconds a client has from connecting to send its whole request head (TLS handshake "
        "included), and the longest a read or write of an answer may stall; then it is closed",
        gt=0,
        le=3600,
    )
    web_max_connections: int = setting(
        1024,
        "--web.max-connections",
        ENV_PREFIX + "WEB_MAX_CONNECTIONS",
        "client connections held at once; beyond it the oldest one still sending its request "
        "is closed (or, when none is, the new one gets a 503)",
        ge=1,
        le=1_000_000,
    )
    web_max_requests: int = setting(
        128,
        "--web.max-requests",
        ENV_PREFIX + "WEB_MAX_REQUESTS",
        "requests answered at once (worker threads; a scrape waiting for a refresh holds "
        "one); more wait in turn. Probes have two threads of their own",
        ge=1,
        le=1024,
    )
    web_enable_lifecycle: bool = setting(
        False,
        "--web.enable-lifecycle",
        ENV_PREFIX + "WEB_ENABLE_LIFECYCLE",
        "accept POST /-/reload (SIGHUP reloads either way)",
    )

    # -- what to list -----------------------------------------------------------------
    config_file: str = setting(
        "",
        "--config.file",
        ENV_PREFIX + "CONFIG_FILE",
        "YAML file of targets (several projects and regions); replaces the single-target flags",
    )
    config_check: bool = setting(
        False, "--config.check", ENV_PREFIX + "CONFIG_CHECK", "check --config.file and exit"
    )
    config_shard: str = setting(
        "",
        "--config.shard",
        ENV_PREFIX + "CONFIG_SHARD",
        "I/N: this replica takes the targets of --config.file whose name hashes to shard I "
        "of N (CRC-32 of the name, modulo N), at start-up and every reload; empty: all",
    )
    region: str = setting(
        "", "--region", "HUAWEICLOUD_SDK_REGION", "region, e.g. cn-north-4; selects both endpoints"
    )
    project_id: str = setting(
        "", "--project-id", "HUAWEICLOUD_SDK_PROJECT_ID", "project whose notebooks are listed"
    )
    endpoint: str = setting(
        "", "--endpoint", ENV_PREFIX + "ENDPOINT", "ModelArts base URL (default from --region)"
    )
    iam_endpoint: str = setting(
        "",
        "--iam-endpoint",
        ENV_PREFIX + "IAM_ENDPOINT",
        "IAM base URL (default: the region's, as the vendor SDK resolves it)",
        also_env="HUAWEICLOUD_SDK_IAM_ENDPOINT",
    )
    api: Literal["auto", "demanager", "notebooks", "both"] = setting(
        "auto",
        "--api",
        ENV_PREFIX + "API",
        "list API: auto (both; a region without the historical one is no error), "
        "demanager (historical), notebooks (newer) or both",
    )
    show_self: bool = setting(
        False,
        "--show-self",
        ENV_PREFIX + "SHOW_SELF",
        "list only the caller's own notebooks (the API's default); false lists the project",
    )
    pool_id: str = setting(
        "", "--pool-id", ENV_PREFIX + "POOL_ID", "only notebooks in this dedicated pool"
    )
    workspace_id: str = setting(
        "", "--workspace-id", ENV_PREFIX + "WORKSPACE_ID", "only notebooks in this workspace"
    )

    # -- credentials (AK/SK; secrets also from <ENV>_FILE) ------------------------------
    ak: SecretStr | None = setting(None, None, "HUAWEICLOUD_SDK_AK", "access key id")
    sk: SecretStr | None = setting(None, None, "HUAWEICLOUD_SDK_SK", "secret access key")
    security_token: SecretStr | None = setting(
        None, None, "HUAWEICLOUD_SDK_SECURITY_TOKEN", "security token of temporary credentials"
    )

    auth_mode: AuthMode = setting(
        "auto",
        "--auth.mode",
        ENV_PREFIX + "AUTH_MODE",
        "credentials to use: auto (the vendor SDK's chain, by what is set), aksk, iam, ecs, "
        "token, idp, oidc-sts, pod-identity or credentials-file",
    )
    iam_username: str = setting(
        "", "--iam.username", ENV_PREFIX + "IAM_USERNAME", "IAM user name (auth mode iam)"
    )
    iam_password: SecretStr | None = setting(
        None, None, ENV_PREFIX + "IAM_PASSWORD", "IAM user password (auth mode iam)"
    )
    iam_domain: str = setting(
        "", "--iam.domain", ENV_PREFIX + "IAM_DOMAIN", "IAM account (domain) name (auth mode iam)"
    )
    auth_token: SecretStr | None = setting(
        None, None, ENV_PREFIX + "AUTH_TOKEN", "a fixed IAM token, for debugging (auth mode token)"
    )
    metadata_url: str = setting(
        "http://169.254.169.254/openstack/latest/securitykey",
        "--auth.metadata-url",
        ENV_PREFIX + "METADATA_URL",
        "ECS metadata endpoint of agency credentials (auth mode ecs); its session token "
        "is asked for at /meta-data/latest/api/token on the same host",
    )
    idp_id: str = setting(
        "",
        "--auth.idp-id",
        "HUAWEICLOUD_SDK_IDP_ID",
        "identity provider of OIDC federation through IAM (auth mode idp)",
    )
    id_token_file: str = setting(
        "",
        "--auth.id-token-file",
        "HUAWEICLOUD_SDK_ID_TOKEN_FILE",
        "file of the OIDC id token, read at every renewal (auth mode idp)",
    )
    oidc_provider_urn: str = setting(
        "",
        "--auth.oidc.provider-urn",
        "HUAWEICLOUD_OIDC_PROVIDER_URN",
        "URN of the OIDC identity provider (auth mode oidc-sts)",
    )
    oidc_agency_urn: str = setting(
        "",
        "--auth.oidc.agency-urn",
        "HUAWEICLOUD_OIDC_AGENCY_URN",
        "URN of the trust agency to assume (auth mode oidc-sts)",
    )
    oidc_token_file: str = setting(
        "",
        "--auth.oidc.token-file",
        "HUAWEICLOUD_OIDC_TOKEN_FILE",
        "file of the OIDC id token, read at every renewal (auth mode oidc-sts)",
    )
    oidc_id_token: SecretStr | None = setting(
        None,
        None,
        "HUAWEICLOUD_OIDC_ID_TOKEN",
        "the OIDC id token itself, instead of its file (auth mode oidc-sts)",
    )
    oidc_session_name: str = setting(
        "oidc-sts-session",
        "--auth.oidc.session-name",
        "HUAWEICLOUD_OIDC_SESSION_NAME",
        "session name of the assumed agency (auth mode oidc-sts)",
    )
    oidc_duration_seconds: int = setting(
        3600,
        "--auth.oidc.duration-seconds",
        "HUAWEICLOUD_OIDC_DURATION_SECONDS",
        "seconds the temporary keys of the agency last (auth mode oidc-sts)",
        ge=900,
        le=43200,
    )
    sts_endpoint: str = setting(
        "",
        "--sts-endpoint",
        ENV_PREFIX + "STS_ENDPOINT",
        "STS base URL (default: the region's, as the vendor SDK resolves it; auth mode oidc-sts)",
        also_env="HUAWEICLOUD_SDK_STS_ENDPOINT",
    )
    pod_identity_uri: str = setting(
        "",
        "--auth.pod-identity.uri",
        "HC_CONTAINER_CREDENTIALS_FULL_URI",
        "CCE pod identity agent URL of the pod's credentials (auth mode pod-identity)",
    )
    pod_identity_token_file: str = setting(
        "",
        "--auth.pod-identity.token-file",
        "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "file of the token the agent asks for, read at every renewal (auth mode pod-identity)",
    )
    credentials_file: str = setting(
        "",
        "--auth.credentials-file",
        "HUAWEICLOUD_SDK_CREDENTIALS_FILE",
        "the vendor SDK's credentials file, section basic (default ~/.huaweicloud/credentials;"
        " auth mode credentials-file)",
    )

    # -- how to talk to the API ---------------------------------------------------------
    flavor_cache_ttl: float = setting(
        600.0,
        "--flavor-cache-ttl",
        ENV_PREFIX + "FLAVOR_CACHE_TTL",
        "seconds the newer API's flavors listing is kept before it is listed again",
        gt=0,
    )
    cache_ttl: float = setting(
        30.0,
        "--cache-ttl",
        ENV_PREFIX + "CACHE_TTL",
        "seconds a fetched list is served before the next scrape refreshes it",
        gt=0,
    )
    max_staleness: float = setting(
        300.0,
        "--max-staleness",
        ENV_PREFIX + "MAX_STALENESS",
        "seconds the last good list is served while refreshes fail",
        ge=0,
    )
    page_size: int = setting(
        200,
        "--page-size",
        ENV_PREFIX + "PAGE_SIZE",
        "instances per list request (0: all in one request)",
        ge=0,
    )
    page_concurrency: int = setting(
        4,
        "--page-concurrency",
        ENV_PREFIX + "PAGE_CONCURRENCY",
        "list pages fetched in parallel once the first page gives the total",
        ge=1,
        le=16,
    )
    request_timeout: float = setting(
        5.0, "--request-timeout", ENV_PREFIX + "REQUEST_TIMEOUT", "seconds per HTTP request", gt=0
    )
    refresh_budget: float = setting(
        8.0,
        "--refresh-budget",
        ENV_PREFIX + "REFRESH_BUDGET",
        "seconds a scrape waits for a refresh: the first scrape, or every one with "
        "--no-refresh.background (keep it under Prometheus's scrape timeout); a longer "
        "refresh goes on in the background and is served when it lands",
        gt=0,
    )
    refresh_timeout: float = setting(
        120.0,
        "--refresh-timeout",
        ENV_PREFIX + "REFRESH_TIMEOUT",
        "seconds a refresh may run before it counts as failed (at least --refresh-budget)",
        gt=0,
    )
    refresh_background: bool = setting(
        True,
        "--refresh.background",
        ENV_PREFIX + "REFRESH_BACKGROUND",
        "once there is data, a scrape after the TTL is answered at once and starts the "
        "refresh in the background, whose outcome the next scrapes show "
        "(stale-while-revalidate: data age stays under TTL plus the refresh's time); "
        "--no-refresh.background: that scrape waits for it, up to --refresh-budget",
    )
    max_response_bytes: int = setting(
        64 * 1024 * 1024,
        "--max-response-bytes",
        ENV_PREFIX + "MAX_RESPONSE_BYTES",
        "largest API response body accepted",
        gt=0,
    )

    # -- cardinality ------------------------------------------------------------------
    metrics_per_instance: bool = setting(
        True,
        "--metrics.per-instance",
        ENV_PREFIX + "METRICS_PER_INSTANCE",
        "export per-notebook series; --no-metrics.per-instance keeps only the aggregates",
    )
    metrics_per_user: bool = setting(
        True,
        "--metrics.per-user",
        ENV_PREFIX + "METRICS_PER_USER",
        "export modelarts_notebook_user_instances; --no-metrics.per-user leaves it out",
    )
    metrics_info_labels: str = setting(
        ",".join(INFO_LABELS),
        "--metrics.info-labels",
        ENV_PREFIX + "METRICS_INFO_LABELS",
        "comma-separated labels of modelarts_notebook_instance_info besides id",
    )

    # -- logging ----------------------------------------------------------------------
    log_level: Literal["debug", "info", "warning", "error"] = setting(
        "info",
        "--log.level",
        ENV_PREFIX + "LOG_LEVEL",
        "debug, info, warn (or warning) or error",
    )
    log_format: Literal["logfmt", "json"] = setting(
        "logfmt", "--log.format", ENV_PREFIX + "LOG_FORMAT", "logfmt or json"
    )

    # -- demo -------------------------------------------------------------------------
    demo: bool = setting(
        False, "--demo", ENV_PREFIX + "DEMO", "export from the built-in simulator (no credentials)"
    )
    demo_instances: int = setting(
        60,
        "--demo.instances",
        ENV_PREFIX + "DEMO_INSTANCES",
        "size of the simulated fleet",
        ge=1,
        le=200_000,
    )
    demo_seed: int = setting(
        7, "--demo.seed", ENV_PREFIX + "DEMO_SEED", "seed of the simulated fleet"
    )

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _warn(cls, value: Any) -> Any:
        """`warn`, as Go exporters spell it (promslog), is `warning`. (Runs before _lower.)"""
        return "warning" if isinstance(value, str) and value.lower() == "warn" else value

    @field_validator("metrics_info_labels")
    @classmethod
    def _check_info_labels(cls, value: str) -> str:
        unknown = {n.strip() for n in value.split(",") if n.strip()} - set(INFO_LABELS)
        if unknown:
            raise ValueError(f"unknown labels {sorted(unknown)}; choose from {list(INFO_LABELS)}")
        return value

    @field_validator("web_listen_address")
    @classmethod
    def _check_address(cls, value: str) -> str:
        parse_listen_address(value)
        return value

    @field_validator("endpoint", "iam_endpoint", "metadata_url", "sts_endpoint", "pod_identity_uri")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("web_telemetry_path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        if not value.startswith("/") or value in ("/", "/-/healthy", "/-/ready"):
            raise ValueError("must be a path starting with / other than the reserved ones")
        return value

    @field_validator("config_shard")
    @classmethod
    def _check_shard(cls, value: str) -> str:
        parse_shard(value)
        return value.strip()

    @model_validator(mode="after")
    def _check_shard_has_targets(self) -> Settings:
        if self.config_shard and not self.config_file:
            raise MissingSetting(
                "config_shard", "needs --config.file: a shard is a share of its targets"
            )
        return self

    @model_validator(mode="after")
    def _check_refresh_timeout(self) -> Settings:
        if self.refresh_timeout < self.refresh_budget:
            raise MissingSetting("refresh_timeout", "must be at least --refresh-budget")
        return self

    @model_validator(mode="after")
    def _check_required(self) -> Settings:
        if self.demo or self.config_file:
            return self
        mode = self.effective_auth_mode
        profile = self.profile() if mode == "credentials-file" else None
        if not self.project_id and not self.region and not (profile and profile.project_id):
            raise MissingSetting(
                "project_id",
                "is required unless --region is given (then it is looked up in IAM), "
                "or run with --demo",
            )
        if not self.region and not self.endpoint:
            raise MissingSetting("region", "is required unless --endpoint is given")
        for name in _REQUIRED_BY_MODE[mode]:
            value = getattr(self, name)
            if not (value.get_secret_value() if isinstance(value, SecretStr) else value):
                raise MissingSetting(name, f"is required with auth mode {mode}")
        if mode == "oidc-sts" and not (self.oidc_token_file or self.oidc_id_token):
            raise MissingSetting(
                "oidc_token_file",
                "is required with auth mode oidc-sts unless HUAWEICLOUD_OIDC_ID_TOKEN is set",
            )
        if mode == "iam" and not self.region and not self.iam_endpoint:
            raise MissingSetting(
                "iam_endpoint", "is required with auth mode iam unless --region is given"
            )
        return self

    @property
    def effective_auth_mode(self) -> str:
        """The auth mode asked for, or the one the configured credentials imply: the
        vendor SDK's chain (OIDC STS, the environment's IdP federation or keys, the
        credentials file, pod identity), the ECS metadata service when nothing is set.
        docs/credentials.md shows the order."""
        if self.auth_mode != "auto":
            return self.auth_mode
        if self.auth_token is not None:
            return "token"  # set only to debug: it wins
        if self.oidc_provider_urn or self.oidc_agency_urn:
            return "oidc-sts"
        if self.idp_id and self.id_token_file:
            return "idp"  # the SDK's EnvCredentialProvider: before ak/sk
        if self.ak is not None or self.sk is not None:
            return "aksk"
        if self.idp_id or self.id_token_file:
            return "idp"  # half of it: the check names the other half
        if self.iam_username or self.iam_password is not None:
            return "iam"
        if self.credentials_file or Path(self.credentials_file_path).is_file():
            return "credentials-file"
        if self.pod_identity_uri or self.pod_identity_token_file:
            return "pod-identity"
        return "ecs"

    @property
    def credentials_file_path(self) -> str:
        """The vendor SDK's credentials file: the one named, else ~/.huaweicloud/credentials."""
        return self.credentials_file or default_credentials_file()

    def profile(self) -> Profile:
        """The credentials file, read now; MissingSetting when it cannot be used."""
        try:
            return read_profile(self.credentials_file_path)
        except ProfileError as err:
            raise MissingSetting("credentials_file", str(err)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _SecretFileSource(settings_cls))

    # -- derived ----------------------------------------------------------------------
    @property
    def shard(self) -> Shard | None:
        """This replica's share of the targets file; None: all of it."""
        return parse_shard(self.config_shard)

    @property
    def series_options(self) -> SeriesOptions:
        labels = frozenset(n.strip() for n in self.metrics_info_labels.split(",") if n.strip())
        return SeriesOptions(
            self.metrics_per_instance,
            None if labels == set(INFO_LABELS) else labels,
            self.metrics_per_user,
        )

    @property
    def modelarts_endpoint(self) -> str:
        return self.endpoint or modelarts_endpoint(self.region)

    @property
    def iam_base_url(self) -> str:
        return self.iam_endpoint or iam_endpoint(self.region)

    @property
    def sts_base_url(self) -> str:
        return self.sts_endpoint or sts_endpoint(self.region)

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redaction filter."""
        secrets = (getattr(self, name) for name in SECRET_FIELDS)
        return [s.get_secret_value() for s in secrets if s is not None and s.get_secret_value()]


SECRET_FIELDS = ("ak", "sk", "security_token", "iam_password", "auth_token", "oidc_id_token")
_REQUIRED_BY_MODE: dict[str, tuple[str, ...]] = {
    "aksk": ("ak", "sk"),
    "iam": ("iam_username", "iam_password", "iam_domain"),
    "token": ("auth_token",),
    "ecs": (),
    "idp": ("idp_id", "id_token_file"),
    "oidc-sts": ("oidc_provider_urn", "oidc_agency_urn"),
    "pod-identity": ("pod_identity_uri", "pod_identity_token_file"),
    "credentials-file": (),  # the file itself is checked when read
}


class _SecretFileSource(PydanticBaseSettingsSource):
    """Reads `<ENV>_FILE` for secrets: the file's content, without the trailing newline."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in SECRET_FIELDS:
            env = env_name(name)
            path = os.environ.get(env + "_FILE")
            if not path or os.environ.get(env):
                continue
            try:
                values[name] = Path(path).read_text(encoding="utf-8").strip()
            except OSError as err:
                raise SettingsError(name, f"cannot read {env}_FILE: {err.strerror}") from None
        return values


@dataclass(frozen=True)
class SettingsError(Exception):
    """A setting is wrong; `str()` is the one line the CLI prints."""

    field: str
    problem: str

    def __str__(self) -> str:
        return f"invalid setting {describe_setting(self.field)}: {self.problem}"


def setting_names(name: str) -> tuple[str | None, str]:
    """The flag (None for secrets) and the environment variable of a field."""
    extra = Settings.model_fields[name].json_schema_extra
    assert isinstance(extra, dict)
    return extra["flag"], str(extra["env"])  # type: ignore[return-value]


def env_name(name: str) -> str:
    return setting_names(name)[1]


def also_env(name: str) -> str:
    """The vendor SDK's variable for the same setting, read when ours is unset; or ""."""
    extra = Settings.model_fields[name].json_schema_extra
    assert isinstance(extra, dict)
    return str(extra.get("also_env") or "")


def describe_setting(name: str) -> str:
    """`--cache-ttl / MODELARTS_EXPORTER_CACHE_TTL`: how a user sets this field."""
    if name not in Settings.model_fields:
        return name
    flag, env = setting_names(name)
    if name in SECRET_FIELDS:
        return f"{env} (or {env}_FILE)"
    return f"{flag} / {env}" if flag else env
