"""How a setting is declared: its flag, its environment variable and its help, once; and
the small errors and parsers the declarations share."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field

ENV_PREFIX = "MODELARTS_EXPORTER_"


def setting(
    default: Any, flag: str | None, env: str, help: str, *, also_env: str = "", **kw: Any
) -> Any:
    """A field that knows its flag and its environment variable (the CLI reads both);
    `also_env` is read when `env` is not set (the vendor SDK's name of the same thing)."""
    extra: dict[str, Any] = {"flag": flag, "env": env, "also_env": also_env}
    names = [env, env.lower()] + ([also_env, also_env.lower()] if also_env else [])
    return Field(
        default,
        validation_alias=AliasChoices(*names),
        description=help,
        json_schema_extra=extra,
        **kw,
    )


class MissingSetting(ValueError):
    """A required setting is missing; carries the field so the message can name it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_listen_address(value: str) -> tuple[str, int]:
    """`host:port`, `:port` or `[::1]:port` → (host, port); empty host means all."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError("must be host:port with a port from 0 to 65535")
    return host.strip("[]") or "0.0.0.0", int(port_text)
