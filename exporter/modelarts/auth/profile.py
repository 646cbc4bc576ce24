"""The vendor SDK's credentials file (`HUAWEICLOUD_SDK_CREDENTIALS_FILE`, by default
`~/.huaweicloud/credentials`), for those who already have one.

INI, section `basic` (huaweicloudsdkcore.auth.provider.ProfileCredentialProvider):

```ini
[basic]
ak = ...
sk = ...
security_token = ...      # temporary keys only
project_id = ...          # optional: otherwise looked up by region
iam_endpoint = ...        # optional
idp_id = ...              # instead of ak/sk: OIDC federation through IAM
id_token_file = ...
```

As in the SDK, `idp_id` with `id_token_file` wins over `ak`/`sk`.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

import requests
from pydantic import SecretStr

from exporter.modelarts.auth.provider import CredentialProvider

SECTION = "basic"


def default_credentials_file() -> str:
    """`~/.huaweicloud/credentials`, the SDK's default (filepath_utils.get_home_path)."""
    home = os.environ.get("HOME") or os.environ.get("USERPROFILE") or str(Path.home())
    return os.path.join(home, ".huaweicloud", "credentials")


class ProfileError(ValueError):
    """The file cannot be used; `str()` names the file and what is wrong."""


@dataclass(frozen=True)
class Profile:
    path: str
    ak: SecretStr | None = None
    sk: SecretStr | None = None
    security_token: SecretStr | None = None
    project_id: str = ""
    iam_endpoint: str = ""
    idp_id: str = ""
    id_token_file: str = ""

    @property
    def federated(self) -> bool:
        """OIDC federation through IAM (idp_id and id_token_file) rather than keys."""
        return bool(self.idp_id and self.id_token_file)

    def secrets(self) -> list[str]:
        found = (self.ak, self.sk, self.security_token)
        return [s.get_secret_value() for s in found if s is not None and s.get_secret_value()]

    def __repr__(self) -> str:
        kind = "idp" if self.federated else "aksk"
        return f"Profile(path={self.path!r}, kind={kind}, project_id={self.project_id!r})"


def read_profile(path: str) -> Profile:
    """The `basic` section of the file; ProfileError when it cannot be used."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ProfileError(f"cannot read {path}: {err.strerror}") from None
    try:
        parser.read_string(text, source=path)
    except configparser.Error as err:
        first = str(err).splitlines()[0]
        raise ProfileError(f"{path} is not an INI file: {first}") from None
    if not parser.has_section(SECTION):
        raise ProfileError(f"{path} has no [{SECTION}] section")
    items = {k: v.strip() for k, v in parser.items(SECTION)}

    def secret(name: str) -> SecretStr | None:
        return SecretStr(items[name]) if items.get(name) else None

    profile = Profile(
        path=path,
        ak=secret("ak"),
        sk=secret("sk"),
        security_token=secret("security_token"),
        project_id=items.get("project_id", ""),
        iam_endpoint=items.get("iam_endpoint", "").rstrip("/"),
        idp_id=items.get("idp_id", ""),
        id_token_file=items.get("id_token_file", ""),
    )
    if not profile.federated and not (profile.ak and profile.sk):
        raise ProfileError(f"{path} [{SECTION}] has neither ak and sk nor idp_id and id_token_file")
    if profile.iam_endpoint and not profile.iam_endpoint.startswith(("http://", "https://")):
        raise ProfileError(f"{path} [{SECTION}] iam_endpoint must start with https://")
    return profile


class CredentialsFileProvider(CredentialProvider):
    """The provider of the file's credentials (keys, or IdP federation), whose keys are
    secrets of their own for the log redaction filter."""

    mode = "credentials-file"

    def __init__(self, profile: Profile, inner: CredentialProvider) -> None:
        self.profile = profile
        self.inner = inner

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return self.inner(request)

    def renew(self) -> bool:
        return self.inner.renew()

    def requests_sent(self) -> dict[str, int]:
        return self.inner.requests_sent()

    def secrets(self) -> list[str]:
        return [*self.profile.secrets(), *self.inner.secrets()]

    def __repr__(self) -> str:
        return f"CredentialsFileProvider({self.profile!r}, {self.inner!r})"
