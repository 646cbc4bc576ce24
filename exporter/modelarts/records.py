"""Reading list responses as leniently as the real API needs: field types and pages.

Every object may be null or absent. Timestamps arrive as epoch milliseconds in strings or
numbers and are kept as float Unix seconds. A record that still cannot be read is
skipped by `parse_records` and counted, so one bad notebook never hides the others.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import msgspec
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


def seconds_after(now: float, seconds: float | None) -> float | None:
    """The time `seconds` after `now` (a `remain_time`), held to the range of timestamps:
    None when there is no such time."""
    if seconds is None:
        return None
    at = now + seconds
    return at if _MIN_SECONDS <= at <= _MAX_SECONDS else None


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
    left_out: int = 0  # records of notebooks that another list had

    @property
    def records(self) -> int:
        return len(self.instances) + self.invalid + self.left_out

    def page_count(self, size: int) -> int:
        """How many pages of `size` the listing has, as this page tells."""
        if self.pages is not None:
            return self.pages
        return -(-(self.total_count or 0) // size)


class MalformedResponse(ValueError):
    """The body is not a list response at all (not JSON, wrong shape)."""


T = TypeVar("T")
E = TypeVar("E", bound=msgspec.Struct)


class RecordMemo:
    """What each record of the last listing became, by a digest of its bytes.

    The vendor's records are large and reading them is most of a refresh's cost, while
    between two refreshes most notebooks do not change: a record whose bytes are those of
    the last listing is not read again (docs/performance.md has the figures). `start()`
    begins a listing; a new `generation` (the flavors a record is joined with) forgets all.
    Each entry also keeps the times its record's `remain_time` values pointed at
    (`parse_records`).
    """

    def __init__(self) -> None:
        self._last: dict[bytes, Entry] = {}
        self._now: dict[bytes, Entry] = {}
        self._generation: object = None

    def start(self, generation: object = None) -> None:
        # Equal, not identical: a flavors listing fetched again and unchanged keeps all.
        same = generation == self._generation
        self._last, self._now = (self._now if same else {}), {}
        self._generation = generation

    def get(self, key: bytes) -> Entry | None:
        found = self._now.get(key)
        return found if found is not None else self._last.get(key)

    def keep(self, key: bytes, entry: Entry) -> None:
        self._now[key] = entry

    def keep_all(self, keys: Iterable[bytes], entries: Iterable[Entry]) -> None:
        """Entries kept again as they were: no new object for each (50,000 of them)."""
        self._now.update(zip(keys, entries, strict=True))

    def finish(self) -> None:
        """The listing is complete: what only earlier listings had is let go."""
        self._last = {}


# How far the time a `remain_time` points at may move between two listings and still be
# the same time: the API gives whole seconds, computed when it answers, which we can only
# date by when the answer arrives.
TICK_TOLERANCE = 2.0  # seconds

Anchors = tuple["float | None", ...]  # listing time + each `remain_time` of a record
Entry = tuple[Any, Anchors]  # what a record became, and its anchors


def parse_records(
    body: bytes,
    envelope: type[E],
    field: str,
    record: TypeAdapter[Any],
    convert: Callable[[Any], T],
    memo: RecordMemo | None = None,
    listed: Container[str] = (),
    key: Callable[[bytes], str | None] = lambda data: None,
    now: float = 0.0,
) -> tuple[E, list[T], int, int]:
    """Parse a list response; skip and count the records that cannot be read.

    The envelope is split into each record's own bytes without reading them (msgspec);
    each record is then read on its own (pydantic), unless `memo` knows its bytes, so one
    bad record never costs the others. A record whose `key` (read from its bytes alone,
    cheaply) is in `listed` is left out unread.
    Returns the envelope, the readable records converted and not left out, how many could
    not be read and how many were left out.

    The API writes some values anew at every listing: `remain_time`, the seconds until a
    stop or queue end, as of the answer (`now`, Unix seconds; `convert` turns them into
    that time). A memo knows a record by its bytes without those values (`digest`), and
    takes it for the same record when every `remain_time` still points at the same time
    (`TICK_TOLERANCE`): a running notebook is not read again because a second went by, a
    stop time that moved is. A whole page is known the same way (where no record is left
    out): one digest of the page instead of one per record, when nothing on it changed.
    """
    page_key = b""  # the whole page's memo key, when it may be taken whole
    page_ticks: tuple[float | None, ...] = ()
    if memo is not None and not listed:
        digest, page_ticks = _digest(body)
        page_key = b"page:" + digest
        known = memo.get(page_key)
        if known is not None and _same_times(known[1], page_ticks, now):
            result, its_digests, its_entries = known[0]
            memo.keep_all(its_digests, its_entries)  # for the next listing, as if read
            memo.keep(page_key, known)
            return result[0], list(result[1]), result[2], result[3]
    try:
        page = msgspec.json.decode(body, type=envelope)
        records: list[Any] = getattr(page, field) or []  # msgspec.Raw: views, not copies
    except msgspec.DecodeError:
        page, records = _lenient(body, envelope, field)
    except (msgspec.ValidationError, RecursionError) as err:
        raise MalformedResponse(_short_reason(err)) from None
    kept: list[T] = []
    digests: list[bytes] = []
    entries: list[Entry] = []
    invalid = left_out = 0
    for data in records:
        if listed and key(data) in listed:  # before any digest: the cheapest way out
            left_out += 1
            continue
        digest, ticks = _digest(data)
        found = memo.get(digest) if memo is not None else None
        if found is not None and (found[1] == ticks == () or _same_times(found[1], ticks, now)):
            entry = found  # with the times it was read with, so that they never drift
        else:
            item = _read(bytes(data), record, convert)
            if item is None:
                invalid += 1
                continue
            entry = (item, _anchored(ticks, now))
        if memo is not None:
            memo.keep(digest, entry)
        kept.append(entry[0])
        digests.append(digest)
        entries.append(entry)
    if memo is not None and page_key:
        # The envelope without its records: they are views of the body, which would be
        # kept whole with them.
        bare = msgspec.structs.replace(page, **{field: None})
        result = (bare, list(kept), invalid, left_out)
        memo.keep(page_key, ((result, digests, entries), _anchored(page_ticks, now)))
    return page, kept, invalid, left_out


def _anchored(ticks: tuple[float | None, ...], now: float) -> Anchors:
    """The times `remain_time` values counted from `now` point at."""
    return tuple(None if tick is None else now + tick for tick in ticks)


def _same_times(anchors: Anchors, ticks: tuple[float | None, ...], now: float) -> bool:
    """Whether each `remain_time` of `ticks`, counted from `now`, points at its anchor."""
    if len(anchors) != len(ticks):
        return False
    for anchor, tick in zip(anchors, ticks, strict=True):
        if anchor is None or tick is None:
            if anchor is not tick:
                return False
        elif not abs(anchor - now - tick) <= TICK_TOLERANCE:  # NaN: never the same
            return False
    return True


_TICKING = b'"remain_time"'
# The key and its value (not text inside a string: a value must follow).
_TICK = re.compile(rb'"remain_time"\s*:\s*(-?[0-9][0-9.eE+-]*|null)')


def record_digest(record: Any) -> bytes:
    """A 128-bit BLAKE2b digest of a record's bytes, less its `remain_time` values."""
    return _digest(record)[0]


def _digest(data: Any) -> tuple[bytes, tuple[float | None, ...]]:
    """`record_digest` of a record or a whole page, and the values it left out, in order.
    The bytes are hashed in one call (which lets the GIL go, for a page, once)."""
    data = bytes(data)
    if _TICKING not in data:  # most records: one pass, no copy
        return hashlib.blake2b(data, digest_size=16).digest(), ()
    parts = _TICK.split(data)  # the text between, and each value
    digest = hashlib.blake2b(b"".join(parts[::2]), digest_size=16).digest()
    return digest, tuple(_tick(value) for value in parts[1::2])


def _tick(text: bytes) -> float | None:
    try:
        number = float(text)
    except ValueError:  # null, or digits that are no number: never the same time
        return None if text == b"null" else math.nan
    return number if math.isfinite(number) else math.nan


def _lenient(body: bytes, envelope: type[E], field: str) -> tuple[E, list[bytes]]:
    """The slow way, for what strict JSON refuses and Python's `json` reads (a NaN in one
    record): split the envelope with `json`, so that only the odd record is lost."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as err:
        raise MalformedResponse(_short_reason(err)) from None
    items = doc.get(field) if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or not isinstance(items, (list, type(None))):
        raise MalformedResponse(f"{field}: not a list response")
    try:
        page = msgspec.convert({k: v for k, v in doc.items() if k != field}, envelope)
    except msgspec.ValidationError as err:
        raise MalformedResponse(_short_reason(err)) from None
    return page, [json.dumps(item).encode() for item in items or ()]


def _read(data: bytes, record: TypeAdapter[Any], convert: Callable[[Any], T]) -> T | None:
    """One record, or None when it cannot be read. pydantic's JSON parser stops at a depth
    the standard one takes (an unknown field nested hundreds deep): that is not the
    record's fault, so such a record is read again through `json`."""
    try:
        return convert(record.validate_json(data))
    except (ValidationError, ValueError, RecursionError):
        pass
    try:
        return convert(record.validate_python(json.loads(data)))
    except (ValidationError, ValueError, RecursionError):
        return None


def read_count(value: Any) -> int | None:
    """A count of the envelope (`total_count`, `total`, `pages`): an old page typed it as
    a string; anything unreadable makes the response malformed."""
    try:
        return count(value)
    except ValueError as err:
        raise MalformedResponse(f"count: {err}") from None


def _short_reason(err: Exception) -> str:
    text = str(err).split("\n")[0][:120]
    if isinstance(err, json.JSONDecodeError):
        return f"not JSON ({err.msg} at byte {err.pos})"
    return text or type(err).__name__
