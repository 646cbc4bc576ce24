"""One successful refresh: the notebooks of a project as listed at one moment.

The part of the exposition that does not depend on the clock is rendered here, once,
in the refresh thread; each scrape only fills in the countdowns (see `render.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from exporter.config.series import SeriesOptions
from exporter.exposition.changes import Changes
from exporter.exposition.formats import format_value, series_prefix
from exporter.exposition.kinds import Anchor, CountdownMetric, Line, Metric, SnapshotMetric
from exporter.exposition.metrics import INFO_METRIC, PER_SECOND, PER_SNAPSHOT
from exporter.modelarts.flavors import Flavor
from exporter.modelarts.instance import Instance


@dataclass(frozen=True)
class Countdown:
    """The notebooks of one countdown metric, their series prefixes and anchors."""

    ids: tuple[str, ...]
    prefixes: tuple[str, ...]
    anchors: tuple[Anchor, ...]
    template: bytes = field(init=False, repr=False)  # every line, its value a %d

    def __post_init__(self) -> None:
        lines = "".join(p.replace("%", "%%") + "%d\n" for p in self.prefixes)
        object.__setattr__(self, "template", lines.encode("utf-8"))

    def values(self, second: int) -> list[int]:
        """The one countdown formula: `a + b·second` in whole seconds, never negative.
        Whole seconds: the value is the same for every scrape within a second, so one
        rendering serves them all."""
        values = [int(a + b * second) for a, b in self.anchors]
        return [v if v > 0 else 0 for v in values]

    def lines(self, second: int) -> bytes:
        # One C-level formatting of every line at once: this runs every new second.
        return self.template % tuple(self.values(second))


@dataclass(frozen=True, eq=False)
class Snapshot:
    project_id: str
    instances: tuple[Instance, ...]
    fetched_at: float  # Unix seconds, when the first page was requested
    options: SeriesOptions = field(default_factory=SeriesOptions)
    flavors: tuple[Flavor, ...] = ()  # the newer API's flavors listing, where there is one
    changes: Changes = field(default_factory=Changes)  # since the exporter started
    static_lines: dict[str, bytes] = field(init=False, repr=False)  # metric name → sample lines
    countdowns: dict[str, Countdown] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        static = {metric.name: self._static(metric) for metric in PER_SNAPSHOT}
        countdowns = {metric.name: self._countdown(metric) for metric in PER_SECOND}
        object.__setattr__(self, "static_lines", static)
        object.__setattr__(self, "countdowns", countdowns)

    def exports(self, metric: Metric) -> bool:
        if metric.per_user and not self.options.per_user:
            return False
        return self.options.per_instance or not metric.per_instance

    def series(self, metric: SnapshotMetric) -> Iterator[Line]:
        """The exposition lines of a clock-free metric, project_id first, as the series
        options shape them."""
        if not self.exports(metric):
            return iter(())
        lines = metric.lines(self, self.project_id)
        kept = self._kept_labels(metric)
        if kept is None:
            return lines
        return (
            (name, tuple(names[i] for i in kept), tuple(values[i] for i in kept), value)
            for name, names, values, value in lines
        )

    def _kept_labels(self, metric: Metric) -> tuple[int, ...] | None:
        """Positions of the info labels kept (`--metrics.info-labels`), None for all."""
        keep = self.options.info_labels
        if keep is None or metric.name != INFO_METRIC:
            return None
        return tuple(
            i
            for i, name in enumerate(metric.label_names)
            if name in ("project_id", "id") or name in keep
        )

    def _static(self, metric: SnapshotMetric) -> bytes:
        return "".join(
            f"{series_prefix(name, names, values)}{format_value(value)}\n"
            for name, names, values, value in self.series(metric)
        ).encode("utf-8")

    def _countdown(self, metric: CountdownMetric) -> Countdown:
        if not self.exports(metric):
            return Countdown((), (), ())
        names = ("project_id", *metric.labels)
        found = metric.anchors(self.instances, self.fetched_at)
        ids = tuple(id_ for id_, _ in found)
        return Countdown(
            ids,
            tuple(series_prefix(metric.name, names, (self.project_id, id_)) for id_ in ids),
            tuple(anchor for _, anchor in found),
        )
