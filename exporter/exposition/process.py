"""The exporter's own process metrics (`process_*`: memory, CPU, open files, start time).

prometheus_client's ProcessCollector reads them from /proc, as every exporter serves them;
served by the renderer, not by `ModelArtsCollector` (a registry that embeds that one
has a process collector of its own).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from exporter.exposition.formats import Format

_REGISTRY = CollectorRegistry(auto_describe=False)
ProcessCollector(registry=_REGISTRY)


def process_lines(fmt: Format) -> bytes:
    """The process families in `fmt`, without OpenMetrics' closing `# EOF`."""
    if fmt.openmetrics:
        body = generate_openmetrics(_REGISTRY)  # type: ignore[no-untyped-call]
        return bytes(body).removesuffix(b"# EOF\n")
    return bytes(generate_latest(_REGISTRY))
