"""A scrape's body in three parts, each cached for as long as it stays the same.

- *static*: everything that depends on the snapshots only — nearly all of the bytes for
  a large fleet — assembled once per set of snapshots and format;
- *countdowns*: the remaining and waiting times, in whole seconds, so the same for every
  scrape within one second (an HA pair, a burst of scrapers);
- *exporter*: `modelarts_up`, data age, request counters and the process metrics: a few
  lines, written per scrape.

Gzip members may be concatenated (RFC 1952 §2.2), so each part is compressed once too,
and a compressed scrape compresses only the few lines that changed.
"""

from __future__ import annotations

import math
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.exposition.formats import Format, format_value, series_prefix
from exporter.exposition.metrics import PER_SCRAPE, PER_SECOND, PER_SNAPSHOT
from exporter.exposition.process import process_lines
from exporter.exposition.snapshot import Snapshot
from exporter.exposition.status import TargetStatus

_GZIP_LEVEL = 6


def gzip_member(data: bytes | Sequence[bytes], level: int = _GZIP_LEVEL) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: with a gzip header
    chunks = [data] if isinstance(data, bytes) else data
    return b"".join([*(compressor.compress(c) for c in chunks), compressor.flush()])


@dataclass(frozen=True)
class Body:
    fmt: Format
    static: tuple[bytes, ...]  # chunks, per set of snapshots
    countdowns: bytes  # per second
    exporter: bytes  # per scrape
    static_gzip: bytes | None  # the cached compressed parts, when there are some
    countdowns_gzip: bytes | None

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

    def get(self, key: object, make: Callable[[], Any]) -> _Slot:
        if self.key != key:
            self.key, self.value, self.gzipped = key, make(), None
        return self


class Renderer:
    """Renders the statuses that `sources()` returns, in either format."""

    def __init__(
        self,
        sources: Callable[[], Sequence[TargetStatus]],
        clock: Callable[[], float] = time.time,
        process_metrics: bool = True,
    ) -> None:
        self._sources = sources
        self._clock = clock
        self._process_metrics = process_metrics
        self._lock = threading.Lock()
        self._static: dict[str, _Slot] = {}
        self._countdowns: dict[str, _Slot] = {}

    def render(self, fmt: Format) -> Body:
        statuses = self._sources()
        now = self._clock()
        second = math.floor(now)
        snapshots = tuple(s.snapshot for s in statuses if s.snapshot is not None)
        # Written for this scrape alone (the process metrics read /proc): outside the lock
        # that the cached parts need, so concurrent scrapes do not wait on each other's.
        exporter = (
            _exporter_section(statuses, fmt, now)
            + (process_lines(fmt) if self._process_metrics else b"")
            + fmt.eof
        )
        # Keys hold the snapshots themselves (compared by identity): never a stale hit.
        with self._lock:
            static = self._static.setdefault(fmt.name, _Slot()).get(
                snapshots, lambda: _static_section(snapshots, fmt)
            )
            countdowns = self._countdowns.setdefault(fmt.name, _Slot()).get(
                (snapshots, second), lambda: _countdown_section(snapshots, fmt, second)
            )
            return Body(
                fmt,
                static.value,
                countdowns.value,
                exporter,
                static.gzipped,
                countdowns.gzipped,
            )

    def gzip(self, body: Body) -> list[bytes]:
        """The body as gzip members; the static and countdown ones compressed once."""
        name = body.fmt.name
        return [
            body.static_gzip or self._compress(self._static[name], body.static),
            body.countdowns_gzip or self._compress(self._countdowns[name], body.countdowns, 1),
            gzip_member(body.exporter, 1),
        ]

    def _compress(self, slot: _Slot, part: Any, level: int = _GZIP_LEVEL) -> bytes:
        # The static part is compressed once per snapshot: worth the best ratio. The
        # countdowns are compressed every second: the fastest level, a third of the time.
        # Once per part, however many scrapes ask at the same moment (a burst after a
        # refresh would otherwise compress the whole static part once per scrape).
        with slot.compressing:
            with self._lock:
                if slot.value is part and slot.gzipped is not None:
                    return slot.gzipped
            compressed = gzip_member(part, level)
            with self._lock:
                if slot.value is part:  # still the current one: keep it for the next scrape
                    slot.gzipped = compressed
            return compressed


def _static_section(snapshots: tuple[Snapshot, ...], fmt: Format) -> tuple[bytes, ...]:
    """Chunks: each family's header and the snapshots' own bytes, never copied."""
    parts: list[bytes] = []
    for metric in PER_SNAPSHOT:
        parts.append(metric.header(fmt))
        parts.extend(snapshot.static_lines[metric.name] for snapshot in snapshots)
    return tuple(parts)


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
