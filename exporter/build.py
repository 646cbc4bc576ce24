"""What was built: the version, and the revision, branch and date of the build.

The image sets them at build time (the Dockerfile's REVISION, BRANCH and BUILD_DATE
arguments become `MODELARTS_EXPORTER_BUILD_*` variables); a source checkout answers from
git; anything else is "unknown". `--version` prints them the way Go exporters do, and
`modelarts_exporter_build_info` carries them as labels, with `pythonversion` where a Go
exporter has `goversion`.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

from exporter import __version__

UNKNOWN = "unknown"
ENV_REVISION = "MODELARTS_EXPORTER_BUILD_REVISION"
ENV_BRANCH = "MODELARTS_EXPORTER_BUILD_BRANCH"
ENV_DATE = "MODELARTS_EXPORTER_BUILD_DATE"
# The work tree the package is imported from, when it is a checkout (an editable install).
_CHECKOUT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class BuildInfo:
    version: str
    revision: str
    branch: str
    build_date: str
    python_version: str
    platform: str

    def text(self, program: str = "modelarts-exporter") -> str:
        """What `--version` prints (the layout of Go exporters' `version.Print`)."""
        return (
            f"{program}, version {self.version} "
            f"(branch: {self.branch}, revision: {self.revision})\n"
            f"  build date:       {self.build_date}\n"
            f"  python version:   {self.python_version}\n"
            f"  platform:         {self.platform}\n"
        )


def _env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    return "" if value == UNKNOWN else value


def _git(*args: str) -> str:
    """A git answer about the checkout the package runs from; "" when there is none."""
    if not (_CHECKOUT / ".git").exists():
        return ""
    try:
        result = subprocess.run(
            ["git", "-C", str(_CHECKOUT), *args],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


@functools.lru_cache(maxsize=1)
def build_info() -> BuildInfo:
    """Read once per process: the environment of the image, else git, else unknown."""
    revision = _env(ENV_REVISION) or _git("rev-parse", "HEAD")
    branch = _env(ENV_BRANCH) or _git("rev-parse", "--abbrev-ref", "HEAD")
    return BuildInfo(
        version=__version__,
        revision=revision or UNKNOWN,
        branch=branch or UNKNOWN,
        build_date=_env(ENV_DATE) or UNKNOWN,
        python_version=platform.python_version(),
        platform=f"{platform.system().lower()}/{platform.machine().lower()}",
    )
