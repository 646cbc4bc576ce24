"""Reading list responses as leniently as the real API needs: field types and pages.

Every object may be null or absent. Timestamps arrive as epoch milliseconds in strings or
numbers and are kept as float Unix seconds. A record that still cannot be read is
skipped by `parse_records` and counted, so one bad notebook never hides the others.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, TypeAdapter, ValidationError

from exporter.modelarts.instance import Instance

_MIN_SECONDS, _MAX_SECONDS = 946_684_800.0, 7_258_118_400.0


def _float(value: Any) -> float:
    """float(), with every failure a ValueError: pydantic turns only those (not TypeError
    for a list, nor OverflowError for an integer beyond 1e308) into a validation error."""
    try:
        return float(value)
    except (TypeError, OverflowError):
        raise ValueError("expected a number") from None


def _ms_to_seconds(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("a timestamp cannot be a boolean")
    seconds = _float(value) / 1000.0
    if not (math.isfinite(seconds) and _MIN_SECONDS <= seconds <= _MAX_SECONDS):
        raise ValueError("timestamp out of range")
    return seconds


def _finite_number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("expected a number")
    number = _float(value)
    if not math.isfinite(number):
        raise ValueError("number must be finite")
    return number


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    """A lone surrogate (JSON allows `\\ud800`) cannot be written as UTF-8: replace it."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def _text(value: Any) -> str:
    """Strings stay strings; numbers (some ids) become text; null becomes empty."""
    if value is None:
        return ""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return _clean(str(value))
    raise ValueError("expected a string")


def _required_text(value: Any) -> str:
    if isinstance(value, str) and value:
        return _clean(value)
    raise ValueError("must be a non-empty string")


MsTimestamp = Annotated[float | None, BeforeValidator(_ms_to_seconds)]
Number = Annotated[float | None, BeforeValidator(_finite_number)]
Text = Annotated[str, BeforeValidator(_text)]
RequiredText = Annotated[str, BeforeValidator(_required_text)]


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def count(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    try:
        number = int(value)
    except (TypeError, OverflowError):  # a list, an object, Infinity
        raise ValueError("expected an integer") from None
    if number < 0:
        raise ValueError("must not be negative")
    return number


@dataclass(frozen=True)
class Page:
    total_count: int | None
    instances: list[Instance]
    invalid: int  # records skipped because they could not be read
    pages: int | None = None  # the newer API says how many pages there are

    @property
    def records(self) -> int:
        return len(self.instances) + self.invalid

    def page_count(self, size: int) -> int:
        """How many pages of `size` the listing has, as this page tells."""
        if self.pages is not None:
            return self.pages
        return -(-(self.total_count or 0) // size)


class MalformedResponse(ValueError):
    """The body is not a list response at all (not JSON, wrong shape)."""


M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def parse_records(
    body: bytes,
    fast: type[M],
    raw: type[BaseModel],
    field: str,
    record: TypeAdapter[Any],
    convert: Callable[[Any], T],
) -> tuple[BaseModel, list[T], int]:
    """Parse a list response; skip and count the records that cannot be read.

    The fast path validates straight from bytes; only when a record is bad do we fall
    back to validating record by record, so a good page never pays for the slow path.
    Returns the page model, the readable records converted, and how many were skipped.
    """
    try:
        page: BaseModel = fast.model_validate_json(body)
        return page, [convert(r) for r in getattr(page, field) or []], 0
    except ValidationError:
        pass
    try:
        page = raw.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError) as err:
        raise MalformedResponse(_short_reason(err)) from None
    kept: list[T] = []
    records = getattr(page, field) or []
    for item in records:
        try:
            kept.append(convert(record.validate_python(item)))
        except (ValidationError, RecursionError):
            continue
    return page, kept, len(records) - len(kept)


def _short_reason(err: Exception) -> str:
    if isinstance(err, ValidationError):
        first = err.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return f"{where}: {first['msg']}"
    if isinstance(err, json.JSONDecodeError):
        return f"not JSON ({err.msg} at byte {err.pos})"
    return type(err).__name__
