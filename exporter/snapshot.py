"""One successful refresh: the notebooks of a project as listed at one moment.

The part of the exposition that does not depend on the clock is rendered here, once,
in the refresh thread; each scrape only fills in the countdowns (see `render.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from exporter.exposition import format_value, label_names, series_prefix
from exporter.instance import Instance
from exporter.metrics import (
    METRICS,
    Anchor,
    CountdownMetric,
    Labels,
    Metric,
    SeriesOptions,
)


@dataclass(frozen=True)
class Countdown:
    """Series prefixes and their anchors: the value at second t is countdown(a, b, t)."""

    prefixes: tuple[str, ...]
    anchors: tuple[Anchor, ...]
    template: bytes = field(init=False, repr=False)  # every line, its value a %d

    def __post_init__(self) -> None:
        lines = "".join(p.replace("%", "%%") + "%d\n" for p in self.prefixes)
        object.__setattr__(self, "template", lines.encode("utf-8"))

    def lines(self, second: int) -> bytes:
        # metrics.countdown() inlined, then one C-level formatting of every line at once.
        values = [int(a + b * second) for a, b in self.anchors]
        return self.template % tuple([v if v > 0 else 0 for v in values])


@dataclass(frozen=True, eq=False)
class Snapshot:
    project_id: str
    instances: tuple[Instance, ...]
    fetched_at: float  # Unix seconds, when the first page was requested
    options: SeriesOptions = field(default_factory=SeriesOptions)
    static_lines: dict[str, bytes] = field(init=False, repr=False)  # metric name → sample lines
    countdowns: dict[str, Countdown] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        static: dict[str, bytes] = {}
        countdowns: dict[str, Countdown] = {}
        for metric in METRICS:
            if isinstance(metric, CountdownMetric):
                countdowns[metric.name] = self._countdown(metric)
            elif metric.static:
                static[metric.name] = self._static(metric)
        object.__setattr__(self, "static_lines", static)
        object.__setattr__(self, "countdowns", countdowns)

    def series(self, metric: Metric) -> tuple[Labels, Iterator[tuple[Labels, float]]]:
        """Label names and (label values, value) of a clock-free metric, project_id first,
        as the series options shape them."""
        if not self.options.exports(metric):
            return (), iter(())
        kept = self.options.kept_labels(metric)
        if kept is None:
            samples = ((labels, v) for labels, v in metric.snapshot_samples(self))
            names = metric.labels
        else:
            samples = (
                (tuple(labels[i] for i in kept), v) for labels, v in metric.snapshot_samples(self)
            )
            names = tuple(metric.labels[i] for i in kept)
        project = self.project_id
        return ("project_id", *names), (((project, *labels), v) for labels, v in samples)

    def _static(self, metric: Metric) -> bytes:
        names, samples = self.series(metric)
        return "".join(
            f"{series_prefix(metric.name, names, labels)}{format_value(v)}\n"
            for labels, v in samples
        ).encode("utf-8")

    def _countdown(self, metric: CountdownMetric) -> Countdown:
        if not self.options.exports(metric):
            return Countdown((), ())
        names = label_names(metric)
        found = metric.anchors(self.instances, self.fetched_at)
        return Countdown(
            tuple(series_prefix(metric.name, names, (self.project_id, id_)) for id_, _ in found),
            tuple(anchor for _, anchor in found),
        )
