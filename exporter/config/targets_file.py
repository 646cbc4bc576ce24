"""The targets file (`--config.file`): several projects and regions in one exporter.

```yaml
targets:
  - name: training-beijing
    region: cn-north-4
    project_id: 0123456789abcdef0123456789abcdef
    api: auto                      # auto (both) | demanager | notebooks | both
    auth:
      ak: {env: TRAINING_AK}       # secrets by reference: {env: NAME} or {file: PATH}
      sk: {file: /secrets/training/sk}
    cache_ttl: 60                  # any per-target override of a global setting
  - name: research-shanghai
    region: cn-east-3              # no project_id: looked up in IAM at start-up
    auth:
      mode: idp                    # workload identity: an OIDC id token, no key at all
      idp_id: cce-oidc
      id_token_file: /var/run/secrets/tokens/id-token
```

Each target gets its own credentials, client, cache, single flight and back-off, so one
slow or failing project never blanks another. A secret written inline is refused unless
the file says `allow_inline_secrets: true`. Every problem is reported with its path. A
target without `project_id` has the project of its region looked up in IAM when the
exporter starts (or reloads); project ids must be unique then too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from exporter.config.fields import MissingSetting
from exporter.config.settings import AuthMode, Settings

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Strict):
    """Where a secret is: an environment variable, a file, or (if allowed) inline."""

    env: str | None = None
    file: str | None = None
    value: SecretStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _inline(cls, data: Any) -> Any:
        return {"value": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if sum(x is not None for x in (self.env, self.file, self.value)) != 1:
            raise ValueError("give exactly one of env, file or an inline value")
        return self

    def resolve(self) -> SecretStr:
        if self.value is not None:
            return self.value
        if self.env is not None:
            if self.env not in os.environ:
                raise ValueError(f"environment variable {self.env} is not set")
            return SecretStr(os.environ[self.env])
        try:
            return SecretStr(Path(str(self.file)).read_text(encoding="utf-8").strip())
        except OSError as err:
            raise ValueError(f"cannot read {self.file}: {err.strerror}") from None


class AuthConfig(_Strict):
    """A target's own credentials: the settings of the same names (docs/credentials.md);
    what it leaves out is not taken from the global credentials."""

    mode: AuthMode = "auto"
    ak: SecretRef | None = None
    sk: SecretRef | None = None
    security_token: SecretRef | None = None
    iam_username: str = ""
    iam_password: SecretRef | None = None
    iam_domain: str = ""
    auth_token: SecretRef | None = None
    metadata_url: str | None = None
    idp_id: str = ""
    id_token_file: str = ""
    oidc_provider_urn: str = ""
    oidc_agency_urn: str = ""
    oidc_token_file: str = ""
    oidc_id_token: SecretRef | None = None
    oidc_session_name: str | None = None
    oidc_duration_seconds: int | None = None
    pod_identity_uri: str = ""
    pod_identity_token_file: str = ""
    credentials_file: str = ""


class TargetConfig(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    project_id: str = ""  # empty: the region's, looked up in IAM at start-up
    region: str = ""
    endpoint: str = ""
    iam_endpoint: str = ""
    sts_endpoint: str | None = None  # unset: the global one (STS answers in any region)
    api: Literal["auto", "demanager", "notebooks", "both"] = "auto"
    auth: AuthConfig = AuthConfig()
    show_self: bool = False
    pool_id: str = ""
    workspace_id: str = ""
    cache_ttl: float | None = Field(None, gt=0)
    flavor_cache_ttl: float | None = Field(None, gt=0)
    max_staleness: float | None = Field(None, ge=0)
    page_size: int | None = Field(None, ge=0)
    request_timeout: float | None = Field(None, gt=0)
    refresh_budget: float | None = Field(None, gt=0)
    refresh_timeout: float | None = Field(None, gt=0)


class ConfigFile(_Strict):
    targets: list[TargetConfig] = Field(min_length=1)
    allow_inline_secrets: bool = False

    @model_validator(mode="after")
    def _unique(self) -> ConfigFile:
        for field in ("name", "project_id"):
            values = [getattr(t, field) for t in self.targets if getattr(t, field)]
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"target {field}s must be unique: {', '.join(duplicates)}")
        return self


class ConfigError(Exception):
    """The file is wrong; `problems` lists each one with its path in the file."""

    def __init__(self, path: str, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


def load_config(path: str, defaults: Settings) -> dict[str, Settings]:
    """Read and check the file; the settings of each target by name. Raises ConfigError."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(path, [f"cannot read: {err.strerror}"]) from None
    except yaml.YAMLError as err:
        raise ConfigError(path, [f"not valid YAML: {err}".replace("\n", " ")]) from None
    try:
        config = ConfigFile.model_validate(doc)
    except ValidationError as err:
        raise ConfigError(path, _problems(err)) from None
    problems: list[str] = []
    targets: dict[str, Settings] = {}
    for index, target in enumerate(config.targets):
        where = f"targets[{index}]"
        try:
            targets[target.name] = _settings_for(
                target, defaults, config.allow_inline_secrets, where
            )
        except ValueError as err:
            problems.append(str(err))
    if problems:
        raise ConfigError(path, problems)
    return targets


def _settings_for(
    target: TargetConfig, defaults: Settings, inline_ok: bool, where: str
) -> Settings:
    """The global settings with this target's values on top, checked like the flags are."""
    # Explicitly not a targets file nor a demo, so that the per-target checks all apply.
    values = defaults.model_dump() | {
        "config_file": "",
        "config_check": False,
        "config_shard": "",
        "demo": False,
    }
    values |= target.model_dump(exclude={"name", "auth"}, exclude_none=True)
    auth = target.auth
    if auth == AuthConfig():
        return _validated(values, where)  # the global credentials: keys serve any project
    values |= auth.model_dump(include=set(_PLAIN_AUTH_FIELDS))
    values["auth_mode"] = auth.mode
    for field in ("metadata_url", "oidc_session_name", "oidc_duration_seconds"):
        if getattr(auth, field) is not None:
            values[field] = getattr(auth, field)
    for field in _SECRET_AUTH_FIELDS:
        ref: SecretRef | None = getattr(auth, field)
        values[field] = None
        if ref is None:
            continue
        if ref.value is not None and not inline_ok:
            raise ValueError(
                f"{where}.auth.{field}: inline secret refused; use {{env: NAME}} or "
                "{file: PATH}, or set allow_inline_secrets: true"
            )
        try:
            values[field] = ref.resolve()
        except ValueError as err:
            raise ValueError(f"{where}.auth.{field}: {err}") from None
    return _validated(values, where)


# A target's own auth replaces all of these, so that no global credential leaks into it.
_PLAIN_AUTH_FIELDS = (
    "iam_username",
    "iam_domain",
    "idp_id",
    "id_token_file",
    "oidc_provider_urn",
    "oidc_agency_urn",
    "oidc_token_file",
    "pod_identity_uri",
    "pod_identity_token_file",
    "credentials_file",
)
_SECRET_AUTH_FIELDS = ("ak", "sk", "security_token", "iam_password", "auth_token", "oidc_id_token")


def check_unique_projects(path: str, targets: dict[str, Settings]) -> None:
    """After the project ids are looked up: still one target per project."""
    owners: dict[str, list[str]] = {}
    for name, settings in targets.items():
        owners.setdefault(settings.project_id, []).append(name)
    shared = {p: names for p, names in owners.items() if len(names) > 1}
    if shared:
        raise ConfigError(
            path,
            [
                f"targets {', '.join(names)} are all project {project}: list each project once"
                for project, names in sorted(shared.items())
            ],
        )


def _validated(values: dict[str, Any], where: str) -> Settings:
    try:
        return Settings.model_validate(values)
    except ValidationError as err:
        raise ValueError("; ".join(f"{where}.{p}" for p in _problems(err))) from None


def _problems(err: ValidationError) -> list[str]:
    out = []
    for error in err.errors(include_url=False, include_input=False):
        missing = (error.get("ctx") or {}).get("error")
        loc = (missing.field,) if isinstance(missing, MissingSetting) else error["loc"]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
        message = str(error["msg"]).removeprefix("Value error, ")
        out.append(f"{where.lstrip('.') or 'file'}: {message}")
    return out
