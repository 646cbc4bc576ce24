"""Pydantic models of the `demanager/instances` list response, as lenient as the real API.

Records are read into these models, then kept as the flat `Instance` of instance.py.

Only the fields the exporter reads are declared; everything else is ignored. Every
object may be null or absent. Timestamps arrive as epoch milliseconds in strings or
numbers and are kept as float Unix seconds. A record that still cannot be read is
skipped by `parse_page` and counted, so one bad instance never hides the others.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, TypeAdapter, ValidationError

from exporter.instance import Instance

# Accepted range of timestamps: 2000-01-01 … 2200-01-01. Anything else is a corrupt value.
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


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class AutoStop(_Model):
    enable: bool | None = None
    duration: Number = None
    stop_timestamp: MsTimestamp = None
    remain_time: Number = None


class FailedReasons(_Model):
    code: Text = ""
    message: Text = ""


class Spec(_Model):
    auto_stop: AutoStop | None = None
    failed_reasons: FailedReasons | None = None


class FlavorDetails(_Model):
    name: Text = ""
    status: Text = ""  # onSale | soldOut
    type: Text = ""  # CPU | GPU | ASCEND
    promo_type: Text = ""  # Free | NoDiscount
    queuing_num: Number = None
    queue_left_time: Number = None


class ProvisionParams(_Model):
    image_name: Text = ""
    image_tag: Text = ""


class ProvisionSpec(_Model):
    params: ProvisionParams | None = None


class Provision(_Model):
    spec: ProvisionSpec | None = None


class Profile(_Model):
    flavor_type: Text = ""
    provision: Provision | None = None


class Pool(_Model):
    id: Text = ""
    name: Text = ""
    type: Text = ""


class Ref(_Model):
    id: Text = ""
    name: Text = ""


class QueuingInfo(_Model):
    status: Text = ""
    rank: Number = None
    begin_timestamp: MsTimestamp = None
    end_timestamp: MsTimestamp = None
    remain_time: Number = None


class InstanceRecord(_Model):
    """One record of the list. `id` and `status` are required: without them it means nothing."""

    id: RequiredText
    status: RequiredText
    name: Text = ""
    flavor: Text = ""
    creation_timestamp: MsTimestamp = None
    latest_update_timestamp: MsTimestamp = None
    error_code: Text = ""
    flavor_details: FlavorDetails | None = None
    profile: Profile | None = None
    pool: Pool | None = None
    workspace: Ref | None = None
    user: Ref | None = None
    spec: Spec | None = None
    queuing_info: QueuingInfo | None = None

    def to_instance(self) -> Instance:
        details = self.flavor_details or FlavorDetails()
        profile = self.profile or Profile()
        provision = profile.provision.spec if profile.provision else None
        params = (provision.params if provision else None) or ProvisionParams()
        image = params.image_name
        if image and params.image_tag:
            image = f"{image}:{params.image_tag}"
        spec = self.spec or Spec()
        auto_stop = spec.auto_stop or AutoStop()
        queue = self.queuing_info or QueuingInfo()
        pool = self.pool or Pool()
        return Instance(
            id=self.id,
            status=self.status,
            name=self.name,
            flavor=self.flavor or details.name,
            flavor_type=profile.flavor_type or details.type,
            pool_id=pool.id,
            pool_name=pool.name,
            pool_type=pool.type,
            workspace_id=self.workspace.id if self.workspace else "",
            user_name=self.user.name if self.user else "",
            image=image,
            created=self.creation_timestamp,
            updated=self.latest_update_timestamp,
            auto_stop=auto_stop.enable,
            stop_timestamp=auto_stop.stop_timestamp,
            stop_remaining=auto_stop.remain_time,
            error=self._error(spec.failed_reasons),
            flavor_sale=details.status,
            flavor_queue_length=details.queuing_num,
            flavor_queue_left=details.queue_left_time,
            queued=self.queuing_info is not None,
            queue_rank=queue.rank,
            queue_begin=queue.begin_timestamp,
            queue_end=queue.end_timestamp,
            queue_remaining=queue.remain_time,
        )

    def _error(self, reasons: FailedReasons | None) -> str | None:
        """The error code the instance reports, `unknown` for a reason without code."""
        if self.error_code:
            return self.error_code
        if reasons and (reasons.code or reasons.message):
            return reasons.code or "unknown"
        return None


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


class _FastPage(_Model):
    total_count: Annotated[int | None, BeforeValidator(count)] = None
    instances: list[InstanceRecord] | None = None


class _RawPage(_Model):
    total_count: Annotated[int | None, BeforeValidator(count)] = None
    instances: list[Any] | None = None


_INSTANCE = TypeAdapter(InstanceRecord)


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


def parse_records(
    body: bytes, fast: type[M], raw: type[BaseModel], field: str, record: TypeAdapter[Any]
) -> tuple[BaseModel, list[Any], int]:
    """Parse a list response; skip and count the records that cannot be read.

    The fast path validates straight from bytes; only when a record is bad do we fall
    back to validating record by record, so a good page never pays for the slow path.
    Returns the page model, the readable records as Instances and how many were skipped.
    """
    try:
        page: BaseModel = fast.model_validate_json(body)
        return page, [r.to_instance() for r in getattr(page, field) or []], 0
    except ValidationError:
        pass
    try:
        page = raw.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError) as err:
        raise MalformedResponse(_short_reason(err)) from None
    kept: list[Any] = []
    records = getattr(page, field) or []
    for item in records:
        try:
            kept.append(record.validate_python(item).to_instance())
        except (ValidationError, RecursionError):
            continue
    return page, kept, len(records) - len(kept)


def parse_page(body: bytes) -> Page:
    """One `demanager/instances` list response."""
    page, instances, invalid = parse_records(body, _FastPage, _RawPage, "instances", _INSTANCE)
    return Page(getattr(page, "total_count", None), instances, invalid)


def _short_reason(err: Exception) -> str:
    if isinstance(err, ValidationError):
        first = err.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return f"{where}: {first['msg']}"
    if isinstance(err, json.JSONDecodeError):
        return f"not JSON ({err.msg} at byte {err.pos})"
    return type(err).__name__
