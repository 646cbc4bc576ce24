"""A scrape's body: the clock-free part cached per set of snapshots, the rest per scrape.

For a fleet of thousands of notebooks nearly all of the exposition is static for as
long as the snapshots live: it is assembled once per format (and gzip-compressed once
when asked). Each scrape then writes only the countdowns and the exporter's own state,
a few kilobytes, and appends them. Gzip members may be concatenated (RFC 1952 §2.2),
so even a compressed scrape compresses only the part that changed.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cachetools import LRUCache

from exporter.cache import TargetStatus
from exporter.exposition import Format, format_value, header, label_names, series_prefix
from exporter.metrics import METRICS, CountdownMetric, ExporterMetric
from exporter.snapshot import Snapshot

_STATIC = tuple(m for m in METRICS if m.static)
_COUNTDOWNS = tuple(m for m in METRICS if isinstance(m, CountdownMetric))
_EXPORTER = tuple(m for m in METRICS if isinstance(m, ExporterMetric))
_GZIP_LEVEL = 6


def gzip_member(data: bytes) -> bytes:
    compressor = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip header
    return compressor.compress(data) + compressor.flush()


@dataclass(frozen=True)
class Body:
    fmt: Format
    static: bytes
    dynamic: bytes
    key: tuple[object, ...]

    def __bytes__(self) -> bytes:
        return self.static + self.dynamic


class Renderer:
    """Renders the statuses that `sources()` returns, in either format."""

    def __init__(
        self,
        sources: Callable[[], Sequence[TargetStatus]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sources = sources
        self._clock = clock
        self._lock = threading.Lock()
        self._static: LRUCache[tuple[object, ...], bytes] = LRUCache(maxsize=4)
        self._gzipped: LRUCache[tuple[object, ...], bytes] = LRUCache(maxsize=2)

    def render(self, fmt: Format) -> Body:
        statuses = self._sources()
        now = self._clock()
        snapshots = tuple(s.snapshot for s in statuses if s.snapshot is not None)
        key = (fmt.name, snapshots)  # holding the snapshots keeps the key unique
        with self._lock:
            static = self._static.get(key)
            if static is None:
                static = self._static[key] = _static_section(snapshots, fmt)
        return Body(fmt, static, _dynamic_section(statuses, snapshots, fmt, now), key)

    def gzip(self, body: Body) -> bytes:
        with self._lock:
            static = self._gzipped.get(body.key)
            if static is None:
                static = self._gzipped[body.key] = gzip_member(body.static)
        return static + gzip_member(body.dynamic)


def _static_section(snapshots: tuple[Snapshot, ...], fmt: Format) -> bytes:
    parts: list[str] = []
    for metric in _STATIC:
        parts.append(header(metric, fmt))
        parts.extend(snapshot.static_lines[metric.name] for snapshot in snapshots)
    return "".join(parts).encode("utf-8")


def _dynamic_section(
    statuses: Sequence[TargetStatus], snapshots: tuple[Snapshot, ...], fmt: Format, now: float
) -> bytes:
    parts: list[str] = []
    for countdown in _COUNTDOWNS:
        parts.append(header(countdown, fmt))
        parts.extend(snapshot.countdowns[countdown.name].lines(now) for snapshot in snapshots)
    for metric in _EXPORTER:
        parts.append(header(metric, fmt))
        names = label_names(metric)
        for status in statuses if metric.per_project else statuses[:1]:
            project = (status.project_id,) if metric.per_project else ()
            parts.extend(
                f"{series_prefix(metric.name, names, (*project, *labels))}{format_value(v)}\n"
                for labels, v in metric.samples(status, now)
            )
    return "".join(parts).encode("utf-8") + fmt.eof
