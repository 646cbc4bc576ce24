"""The exporter's own process metrics (`process_*`: memory, CPU, open files, start time).

prometheus_client's ProcessCollector reads them from /proc, as every exporter serves them;
served by the renderer, not by `ModelArtsCollector` (a registry that embeds that one
has a process collector of its own). Read at most once a second per format: reading
/proc costs more than the rest of a small project's scrape, and scrapes within one
second (an HA pair, a burst) are served the same values, at most a second old.
"""

from __future__ import annotations

import math
import time

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from exporter.exposition.formats import Format

_REGISTRY = CollectorRegistry(auto_describe=False)
ProcessCollector(registry=_REGISTRY)


_LAST: dict[str, tuple[int, bytes]] = {}  # format → (second, lines); replaced whole, no lock


def process_lines(fmt: Format, now: float | None = None) -> bytes:
    """The process families in `fmt`, without OpenMetrics' closing `# EOF`, as read
    within the second of `now` (the clock when None)."""
    second = math.floor(time.time() if now is None else now)
    cached = _LAST.get(fmt.name)
    if cached is not None and cached[0] == second:
        return cached[1]
    if fmt.openmetrics:
        body = generate_openmetrics(_REGISTRY)  # type: ignore[no-untyped-call]
        lines = bytes(body).removesuffix(b"# EOF\n")
    else:
        lines = bytes(generate_latest(_REGISTRY))
    _LAST[fmt.name] = (second, lines)
    return lines
