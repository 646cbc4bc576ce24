"""The kinds of metric, told apart by when their values are computed.

- `InstanceMetric`: one notebook of a listing; computed once per snapshot.
- `FleetMetric`: all notebooks of a listing (counts, flavors, pools), and what changed up
  to it (transitions); once per snapshot. `HistogramMetric` likewise (queue waits).
- `CountdownMetric`: one notebook and the clock; the snapshot keeps an anchor `(a, b)` and
  each second serves `a + b·second`, never negative (see `snapshot.Countdown`), so a cached
  listing never serves a stale countdown.
- `ExporterMetric`: the exporter's own state of a target (up, age, counters); per scrape.

Renderers and the docs group metrics by `when`, never by their class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol, TypeVar, cast

from exporter.exposition.changes import QUEUE_WAIT_BUCKETS, Changes, Histogram
from exporter.exposition.formats import Format, family_name, format_value, header
from exporter.modelarts.client import Telemetry
from exporter.modelarts.flavors import Flavor
from exporter.modelarts.instance import Instance

When = Literal["snapshot", "second", "scrape"]
Labels = tuple[str, ...]
Sample = tuple[Labels, float]
Anchor = tuple[float, float]  # the value at second t is a + b·t, never negative


class TargetState(Protocol):
    """What exporter metrics read of one target (`status.TargetStatus` is one)."""

    @property
    def up(self) -> bool: ...
    @property
    def last_success(self) -> float | None: ...
    @property
    def last_duration(self) -> float | None: ...
    @property
    def invalid_total(self) -> int: ...
    @property
    def telemetry(self) -> Telemetry: ...
    @property
    def fetched_at(self) -> float | None:
        """When the data served was listed; None when none is served."""

    @property
    def target(self) -> tuple[str, str, str]:
        """The target's name, region and list API."""


@dataclass(frozen=True)
class Metric:
    name: str
    help: str
    labels: Labels
    type: Literal["gauge", "counter", "histogram"] = "gauge"
    per_project: bool = True  # carries project_id (all but build_info)
    per_user: bool = False  # one series per user: off with --no-metrics.per-user
    when: ClassVar[When]
    per_instance: ClassVar[bool]  # one series per notebook: off with --no-metrics.per-instance
    computed: ClassVar[str]  # when and over what, in words, for docs/metrics.md

    @property
    def family(self) -> str:
        return family_name(self.name, self.type)

    @property
    def label_names(self) -> Labels:
        """Every label of a series, `project_id` first."""
        return ("project_id", *self.labels) if self.per_project else self.labels

    def header(self, fmt: Format) -> bytes:
        return header(self.name, self.help, self.type, fmt).encode("utf-8")


class Listed(Protocol):
    """What snapshot metrics read: one good listing and what changed up to it."""

    @property
    def instances(self) -> Sequence[Instance]: ...
    @property
    def flavors(self) -> Sequence[Flavor]: ...
    @property
    def changes(self) -> Changes: ...
    @property
    def fetched_at(self) -> float: ...


# One exposition line of a snapshot metric: sample name, label names, label values, value.
Line = tuple[str, Labels, Labels, float]


@dataclass(frozen=True)
class SnapshotMetric(Metric):
    """Depends on the listing only: rendered once when a snapshot is made."""

    when: ClassVar[When] = "snapshot"

    def samples(self, listed: Listed) -> Iterable[Sample]:
        raise NotImplementedError

    def lines(self, listed: Listed, project_id: str) -> Iterator[Line]:
        names = self.label_names
        for labels, value in self.samples(listed):
            yield self.name, names, (project_id, *labels), value


@dataclass(frozen=True)
class InstanceMetric(SnapshotMetric):
    """Per notebook; `value` returns the labels after `id` and the value, or nothing."""

    value: Callable[[Instance], Iterable[Sample]] = lambda i: ()
    per_instance: ClassVar[bool] = True
    computed: ClassVar[str] = "per notebook, once per refresh"

    def samples(self, listed: Listed) -> Iterable[Sample]:
        for instance in listed.instances:
            for labels, value in self.value(instance):
                yield (instance.id, *labels), value

    def instance_lines(self, instance: Instance, project_id: str) -> Iterator[Line]:
        """The lines of one notebook: those `lines` writes for it, in the same order."""
        names = self.label_names
        for labels, value in self.value(instance):
            yield self.name, names, (project_id, instance.id, *labels), value


@dataclass(frozen=True)
class FleetMetric(SnapshotMetric):
    """Aggregated over a listing: its notebooks, its flavors, what changed up to it."""

    value: Callable[[Listed], Iterable[Sample]] = lambda listed: ()
    per_instance: ClassVar[bool] = False
    computed: ClassVar[str] = "per project, once per refresh"

    def samples(self, listed: Listed) -> Iterable[Sample]:
        return self.value(listed)


@dataclass(frozen=True)
class HistogramMetric(SnapshotMetric):
    """A histogram per label set, over what changed up to the listing."""

    type: Literal["gauge", "counter", "histogram"] = "histogram"
    value: Callable[[Listed], Iterable[tuple[Labels, Histogram]]] = lambda listed: ()
    per_instance: ClassVar[bool] = False
    computed: ClassVar[str] = "per project, once per refresh"

    def lines(self, listed: Listed, project_id: str) -> Iterator[Line]:
        names = self.label_names
        with_le = (*names, "le")
        for labels, histogram in self.value(listed):
            values = (project_id, *labels)
            for bound, count in zip(QUEUE_WAIT_BUCKETS, histogram.buckets, strict=True):
                yield f"{self.name}_bucket", with_le, (*values, format_value(bound)), count
            yield f"{self.name}_bucket", with_le, (*values, "+Inf"), histogram.count
            yield f"{self.name}_count", names, values, histogram.count
            yield f"{self.name}_sum", names, values, histogram.sum


@dataclass(frozen=True)
class CountdownMetric(Metric):
    """Per notebook, moving with the clock; `anchor` is fixed for the snapshot's life."""

    anchor: Callable[[Instance], Anchor | None] = lambda i: None
    when: ClassVar[When] = "second"
    per_instance: ClassVar[bool] = True
    computed: ClassVar[str] = "per notebook, at scrape time"


@dataclass(frozen=True)
class ExporterMetric(Metric):
    """The exporter's own state, per project (or once, for build_info)."""

    value: Callable[[TargetState, float], Iterable[Sample]] = lambda s, t: ()
    when: ClassVar[When] = "scrape"
    per_instance: ClassVar[bool] = False
    computed: ClassVar[str] = "exporter state, at scrape time"

    def samples(self, state: TargetState, now: float) -> Iterable[Sample]:
        return self.value(state, now)


M = TypeVar("M", bound=Metric)


def computed_when(metrics: Sequence[Metric], when: When, kind: type[M]) -> tuple[M, ...]:
    """The metrics of the table computed at `when`, in table order, typed as their kind."""
    return tuple(cast(M, m) for m in metrics if m.when == when)
