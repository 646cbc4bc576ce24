"""A scrape's body in three parts, each cached for as long as it stays the same.

- *static*: everything that depends on the snapshots only — nearly all of the bytes for
  a large fleet — assembled once per set of snapshots and format;
- *countdowns*: the remaining and waiting times, in whole seconds, so the same for every
  scrape within one second (an HA pair, a burst of scrapers);
- *exporter*: `modelarts_up`, data age, request counters and the process metrics: a few
  lines, written per scrape.

Gzip members may be concatenated (RFC 1952 §2.2), so each part is compressed once too,
and a compressed scrape compresses only the few lines that changed.

Ahead of a predicted scrape: a lone Prometheus scrapes seconds apart, so each of its
scrapes is the first of its second and would pay for the countdown part, every line of
which changes each second (at 10,000 notebooks ~0.7 MB: ~2 ms to write, ~5 ms more to
compress), several times what serving the same bytes costs. But it scrapes at a fixed
interval and phase: after each scrape, `served` tells `ahead.Ahead` the client (its host,
not its port), the format and whether it took gzip, and from that client's previous
scrape it predicts the next. Half a second before it, from the snapshots current then
(a refresh may have landed since; read through `peek`, which never refreshes), this
renderer writes and, for gzip, compresses the countdown part of the predicted second
(and of the neighbouring one within 0.1 s of a boundary), and the static member if a
new set of snapshots has not been compressed yet; the lock only to read and store. The
countdown cache of a format holds the current second's part and those made ahead (at
most `_SECONDS`, the past ones dropped, all of one set of snapshots compared by
identity), so a scrape never gets a stale part. Countdown values are a function of the
second alone, so the bytes made ahead are those the scrape would have written. A miss
(another second, a refresh since) writes the part inline, costing what it did before;
prediction keeps at most 64 clients and uses only intervals of 0.9 s to an hour.
"""

from __future__ import annotations

import functools
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.exposition.ahead import Ahead
from exporter.exposition.formats import Format, format_value, series_prefix
from exporter.exposition.members import GZIP_LEVEL, Members, gzip_member
from exporter.exposition.metrics import PER_SCRAPE, PER_SECOND, PER_SNAPSHOT
from exporter.exposition.process import process_lines
from exporter.exposition.snapshot import Snapshot
from exporter.exposition.status import TargetStatus

_SECONDS = 4  # countdown parts kept per format: the current second's and those made ahead


@dataclass(frozen=True)
class Body:
    fmt: Format
    static: tuple[bytes, ...]  # chunks, per set of snapshots
    countdowns: bytes  # per second
    exporter: bytes  # per scrape
    static_gzip: bytes | None  # the cached compressed parts, when there are some
    countdowns_gzip: bytes | None
    second: int  # of the countdowns
    at: float  # the clock when rendered

    def __bytes__(self) -> bytes:
        return b"".join(self.chunks())

    def chunks(self) -> list[bytes]:
        return [*self.static, self.countdowns, self.exporter]


class _Slot:
    """The latest value of one part, with its key; older ones are let go at once, so a
    refresh never keeps the previous snapshots alive."""

    def __init__(self) -> None:
        self.key: object = None
        self.value: Any = b""
        self.gzipped: bytes | None = None
        self.compressing = threading.Lock()
        self.members = Members()  # the static part's: kept from one set of snapshots to the next

    def get(self, key: object, make: Callable[[], Any]) -> _Slot:
        if self.key != key:
            self.key, self.value, self.gzipped = key, make(), None
        return self


class _Countdowns:
    """The countdown parts of one format by second, all of one set of snapshots: the
    current second's and those made ahead; a new set lets the previous one go at once."""

    def __init__(self) -> None:
        self.snapshots: tuple[Snapshot, ...] | None = None  # compared item by item: identity
        self.seconds: dict[int, _Slot] = {}

    def get(self, snapshots: tuple[Snapshot, ...], second: int) -> _Slot | None:
        return self.seconds.get(second) if snapshots == self.snapshots else None

    def put(self, snapshots: tuple[Snapshot, ...], second: int, value: bytes, now: int) -> _Slot:
        """The part kept for `second` (one already there wins); the past ones dropped."""
        if snapshots != self.snapshots:
            self.snapshots, self.seconds = snapshots, {}
        slot = self.seconds.get(second)
        if slot is None:
            slot = self.seconds[second] = _Slot()
            slot.key, slot.value = second, value
        for past in [s for s in self.seconds if s < now]:
            del self.seconds[past]
        while len(self.seconds) > _SECONDS:  # only many clients' predictions: the farthest
            del self.seconds[max(s for s in self.seconds if s != second)]
        return slot


class Renderer:
    """Renders the statuses that `sources()` returns, in either format.

    `peek()` returns them without refreshing anything (it defaults to `sources`, for
    sources that never refresh): what is made ahead of a scrape (`served`) reads it.
    `ahead` schedules that work; several renderers may share one, and each makes its own
    on its first `served` when given none.
    """

    def __init__(
        self,
        sources: Callable[[], Sequence[TargetStatus]],
        clock: Callable[[], float] = time.time,
        process_metrics: bool = True,
        peek: Callable[[], Sequence[TargetStatus]] | None = None,
        ahead: Ahead | None = None,
    ) -> None:
        self._sources = sources
        self._peek = peek or sources
        self._clock = clock
        self._process_metrics = process_metrics
        self._ahead = ahead
        self._client = object()  # this renderer's part of a client's key in `ahead`
        self._lock = threading.Lock()
        self._static: dict[str, _Slot] = {}
        self._countdowns: dict[str, _Countdowns] = {}
        self.inline_countdowns = 0  # countdown parts written by a scrape, not ahead

    def render(self, fmt: Format) -> Body:
        statuses = self._sources()
        now = self._clock()
        second = math.floor(now)
        snapshots = _snapshots(statuses)
        # Written for this scrape alone (the process metrics read /proc): outside the lock
        # that the cached parts need, so concurrent scrapes do not wait on each other's.
        exporter = (
            _exporter_section(statuses, fmt, now)
            + (process_lines(fmt) if self._process_metrics else b"")
            + fmt.eof
        )
        # Keys hold the snapshots themselves (compared by identity): never a stale hit.
        with self._lock:
            static, parts, countdowns = self._cached(fmt, snapshots, second)
            if countdowns is None:  # not made ahead: written now, as for any new second
                self.inline_countdowns += 1
                section = _countdown_section(snapshots, fmt, second)
                countdowns = parts.put(snapshots, second, section, second)
            return Body(
                fmt,
                static.value,
                countdowns.value,
                exporter,
                static.gzipped,
                countdowns.gzipped,
                second,
                now,
            )

    def gzip(self, body: Body) -> list[bytes]:
        """The body as gzip members; the static and countdown ones compressed once."""
        name = body.fmt.name
        with self._lock:
            countdowns = self._countdowns[name].seconds.get(body.second)
        return [
            body.static_gzip or self._compress_static(self._static[name], body.static, body.fmt),
            body.countdowns_gzip
            or (
                self._compress(countdowns, body.countdowns, 1)
                if countdowns is not None
                else gzip_member(body.countdowns, 1)  # let go already: many seconds ahead
            ),
            gzip_member(body.exporter, 1),
        ]

    def served(self, body: Body, client: str, gzip: bool) -> None:
        """`client` (a host) was served `body`, compressed or not: its next scrape is
        predicted, and its parts made ahead (see the module's docstring)."""
        with self._lock:
            if self._ahead is None:
                self._ahead = Ahead(self._clock)
            ahead = self._ahead
        fmt = body.fmt
        ahead.scraped(
            (self._client, client, fmt.name, gzip),
            body.at,
            functools.partial(_prepare, weakref.ref(self), fmt, gzip),
        )

    def prepare(self, fmt: Format, gzip: bool, second: int) -> None:
        """Makes what a scrape within `second` will need of the cached parts, from the
        statuses `peek()` returns now; the lock only taken to read and store, as in
        `_compress`. Nothing for a second already past."""
        now = math.floor(self._clock())
        if second < now:
            return
        snapshots = _snapshots(self._peek())
        with self._lock:  # the static part's chunks: no copy, nothing to write
            static, parts, countdowns = self._cached(fmt, snapshots, second)
        if gzip:  # a new set of snapshots, compressed before the scrape that needs it
            self._compress_static(static, static.value, fmt)
        if countdowns is None:
            section = _countdown_section(snapshots, fmt, second)
            with self._lock:
                countdowns = parts.put(snapshots, second, section, now)
        if gzip:
            self._compress(countdowns, countdowns.value, 1)

    def _cached(
        self, fmt: Format, snapshots: tuple[Snapshot, ...], second: int
    ) -> tuple[_Slot, _Countdowns, _Slot | None]:
        """Under the lock: the static part of `snapshots` (its chunks made if new), the
        format's countdown parts, and that of `second` if it is there."""
        static = self._static.setdefault(fmt.name, _Slot()).get(
            snapshots, lambda: _static_section(snapshots, fmt)
        )
        parts = self._countdowns.setdefault(fmt.name, _Countdowns())
        return static, parts, parts.get(snapshots, second)

    def _compress(self, slot: _Slot, part: Any, level: int) -> bytes:
        # The countdowns are compressed every second: the fastest level, a third of the
        # time of the static part's.
        return self._once(slot, part, lambda _: gzip_member(part, level), level)

    def _compress_static(self, slot: _Slot, part: Any, fmt: Format) -> bytes:
        # Once per set of snapshots: worth the best ratio, and block by block, so that
        # what did not change since the last set is not compressed again (members.py).
        return self._once(
            slot, part, lambda snapshots: slot.members.compress(_static_blocks(snapshots, fmt))
        )

    def _once(
        self, slot: _Slot, part: Any, compress: Callable[[Any], bytes], level: int = GZIP_LEVEL
    ) -> bytes:
        """`part` compressed once, however many scrapes ask at the same moment (a burst
        after a refresh would otherwise compress the whole static part once per scrape);
        `compress` is given the slot's key. A part the slot has let go meanwhile is
        compressed at `level` for this scrape alone."""
        with slot.compressing:
            with self._lock:
                if slot.value is part and slot.gzipped is not None:
                    return slot.gzipped
                key = slot.key if slot.value is part else None
            if key is None:  # let go meanwhile: compressed for this scrape alone
                return gzip_member(part, level)
            compressed = compress(key)
            with self._lock:
                if slot.value is part:  # still the current one: keep it for the next scrape
                    slot.gzipped = compressed
            return compressed


def _prepare(renderer: weakref.ref[Renderer], fmt: Format, gzip: bool, second: int) -> None:
    """A scheduled job never keeps its renderer alive (a probe's, after a reload)."""
    alive = renderer()
    if alive is not None:
        alive.prepare(fmt, gzip, second)


def _snapshots(statuses: Sequence[TargetStatus]) -> tuple[Snapshot, ...]:
    return tuple(s.snapshot for s in statuses if s.snapshot is not None)


def _static_section(snapshots: tuple[Snapshot, ...], fmt: Format) -> tuple[bytes, ...]:
    """Chunks: each family's header and the snapshots' own bytes, never copied."""
    parts: list[bytes] = []
    for metric in PER_SNAPSHOT:
        parts.append(metric.header(fmt))
        parts.extend(snapshot.static_lines[metric.name] for snapshot in snapshots)
    return tuple(parts)


def _static_blocks(snapshots: tuple[Snapshot, ...], fmt: Format) -> Iterator[bytes | memoryview]:
    """The bytes of `_static_section`, in blocks that end at the same notebooks from one
    set of snapshots to the next (`Snapshot.blocks`)."""
    for metric in PER_SNAPSHOT:
        yield metric.header(fmt)
        for snapshot in snapshots:
            yield from snapshot.blocks(metric.name)


def _countdown_section(snapshots: tuple[Snapshot, ...], fmt: Format, second: int) -> bytes:
    parts: list[bytes] = []
    for countdown in PER_SECOND:
        parts.append(countdown.header(fmt))
        parts.extend(snapshot.countdowns[countdown.name].lines(second) for snapshot in snapshots)
    return b"".join(parts)


def _exporter_section(statuses: Sequence[TargetStatus], fmt: Format, now: float) -> bytes:
    parts: list[bytes] = []
    for metric in PER_SCRAPE:
        parts.append(metric.header(fmt))
        names = metric.label_names
        for status in statuses if metric.per_project else statuses[:1]:
            project = (status.project_id,) if metric.per_project else ()
            parts.append(
                "".join(
                    f"{series_prefix(metric.name, names, (*project, *labels))}{format_value(v)}\n"
                    for labels, v in metric.samples(status, now)
                ).encode("utf-8")
            )
    return b"".join(parts)
