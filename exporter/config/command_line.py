"""From the command line and the environment to `Settings`: one flag per setting,
generated from the fields, and one line naming the setting for whatever is wrong."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any, NoReturn

from pydantic import ValidationError

from exporter.config.fields import MissingSetting
from exporter.config.settings import Settings, SettingsError, env_name, setting_names


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, exit 2: the same answer as for a bad value."""
        self.exit(2, f"{self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """One flag per setting, generated from the fields so the two never disagree."""
    parser = _Parser(
        prog="modelarts-exporter",
        description="Prometheus exporter for Huawei Cloud ModelArts notebook instances.",
        argument_default=argparse.SUPPRESS,
    )
    for name, field in Settings.model_fields.items():
        flag = setting_names(name)[0]
        if not flag:
            continue
        help_text = f"{field.description} [env {env_name(name)}; default {field.default!r}]"
        if field.annotation is bool:
            parser.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, help=help_text
            )
        else:
            parser.add_argument(flag, dest=name, metavar=name.upper(), help=help_text)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser


def load_settings(flags: Mapping[str, Any]) -> Settings:
    """Merge parsed flags with the environment and validate. Raises SettingsError."""
    try:
        return Settings(**flags)
    except ValidationError as err:
        raise _first_problem(err) from None


def _first_problem(err: ValidationError) -> SettingsError:
    error = err.errors(include_url=False, include_input=False)[0]
    ctx_error = (error.get("ctx") or {}).get("error")
    if isinstance(ctx_error, MissingSetting):
        return SettingsError(ctx_error.field, str(ctx_error))
    loc = error["loc"][0] if error["loc"] else "settings"
    field = _field_for(str(loc))
    message = str(error["msg"]).removeprefix("Value error, ")
    return SettingsError(field, message[0].lower() + message[1:])


def _field_for(loc: str) -> str:
    """Map a validation location (field name or env alias) back to the field name."""
    for name in Settings.model_fields:
        if loc.lower() in (name, env_name(name).lower()):
            return name
    return loc
