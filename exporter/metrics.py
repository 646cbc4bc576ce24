"""Every metric the exporter serves, declared once: name, type, help, labels, how to compute.

This table drives the collector, the pre-rendered exposition, `docs/metrics.md` and the
tests. Every series but `modelarts_exporter_build_info` also carries `project_id`, put
first by the renderers; the `labels` below are the ones after it.

Four kinds of metric, by what their value depends on:
- `InstanceMetric`: one notebook of a snapshot; rendered once per snapshot.
- `FleetMetric`: all notebooks of a snapshot (counts, flavors, pools); once per snapshot.
- `CountdownMetric`: one notebook and the clock; the snapshot keeps an anchor `(a, b)` and
  each scrape serves `max(0, a + b * now)`, so a cached list never serves a stale countdown.
- `ExporterMetric`: the exporter's own state (up, age, counters); computed per scrape.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from exporter import __version__
from exporter.models import Instance
from exporter.models_v2 import V2_ONLY_STATUSES

if TYPE_CHECKING:
    from exporter.cache import TargetStatus
    from exporter.snapshot import Snapshot

# The statuses of the historical API, in lifecycle order, then the newer API's own;
# `sum by (status)` always returns each of KNOWN_STATUSES.
DEMANAGER_STATUSES = (
    "CREATE_QUEUING",
    "CREATING",
    "CREATE_FAILED",
    "START_QUEUING",
    "READY_TO_START",
    "STARTING",
    "RESTARTING",
    "START_FAILED",
    "RUNNING",
    "STOPPING",
    "STOPPED",
    "UNAVAILABLE",
    "DELETED",
    "RESIZING",
    "RESIZE_FAILED",
)
KNOWN_STATUSES = DEMANAGER_STATUSES + V2_ONLY_STATUSES
QUEUING_STATUSES = frozenset({"CREATE_QUEUING", "START_QUEUING"})
PUBLIC_POOL = ("", "public", "PUBLIC")  # pool_id, pool_name, pool_type of the shared pool

Labels = tuple[str, ...]
Sample = tuple[Labels, float]
Anchor = tuple[float, float]  # value at time t is max(0, a + b * t)


@dataclass(frozen=True)
class Metric:
    name: str
    help: str
    labels: Labels
    type: Literal["gauge", "counter"] = "gauge"
    per_project: bool = True  # carries project_id (all but build_info)
    static = False  # same value for as long as the snapshot lives (see snapshot_samples)

    @property
    def family(self) -> str:
        """OpenMetrics family name: counters drop their `_total` suffix."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name

    def samples(self, status: TargetStatus, now: float) -> Iterable[Sample]:
        raise NotImplementedError

    def snapshot_samples(self, snapshot: Snapshot) -> Iterable[Sample]:
        raise NotImplementedError(f"{self.name} depends on the clock or the exporter")


@dataclass(frozen=True)
class InstanceMetric(Metric):
    """Per notebook; `value` returns the labels after `id` and the value, or nothing."""

    value: Callable[[Instance, float], Iterable[Sample]] = lambda i, t: ()
    static = True

    def snapshot_samples(self, snapshot: Snapshot) -> Iterable[Sample]:
        for instance in snapshot.instances:
            for labels, value in self.value(instance, snapshot.fetched_at):
                yield (instance.id, *labels), value

    def samples(self, status: TargetStatus, now: float) -> Iterable[Sample]:
        return () if status.snapshot is None else self.snapshot_samples(status.snapshot)


@dataclass(frozen=True)
class CountdownMetric(Metric):
    """Per notebook, moving with the clock; `anchor` is fixed for the snapshot's life."""

    anchor: Callable[[Instance, float], Anchor | None] = lambda i, t: None

    def anchors(self, instances: Sequence[Instance], fetched_at: float) -> list[tuple[str, Anchor]]:
        found = ((i.id, self.anchor(i, fetched_at)) for i in instances)
        return [(id_, anchor) for id_, anchor in found if anchor is not None]

    def samples(self, status: TargetStatus, now: float) -> Iterable[Sample]:
        snapshot = status.snapshot
        if snapshot is None:
            return
        for id_, (a, b) in self.anchors(snapshot.instances, snapshot.fetched_at):
            yield (id_,), max(0.0, a + b * now)


@dataclass(frozen=True)
class FleetMetric(Metric):
    """Aggregated over all notebooks of the snapshot."""

    value: Callable[[Sequence[Instance]], Iterable[Sample]] = lambda instances: ()
    static = True

    def snapshot_samples(self, snapshot: Snapshot) -> Iterable[Sample]:
        return self.value(snapshot.instances)

    def samples(self, status: TargetStatus, now: float) -> Iterable[Sample]:
        return () if status.snapshot is None else self.snapshot_samples(status.snapshot)


@dataclass(frozen=True)
class ExporterMetric(Metric):
    """The exporter's own state, per project (or once, for build_info)."""

    value: Callable[[TargetStatus, float], Iterable[Sample]] = lambda s, t: ()

    def samples(self, status: TargetStatus, now: float) -> Iterable[Sample]:
        return self.value(status, now)


@dataclass(frozen=True)
class SeriesOptions:
    """Cardinality controls for very large fleets (see docs/performance.md)."""

    per_instance: bool = True  # False: only the per-project aggregates and exporter state
    info_labels: frozenset[str] | None = None  # labels of instance_info kept besides id

    def exports(self, metric: Metric) -> bool:
        return self.per_instance or not isinstance(metric, (InstanceMetric, CountdownMetric))

    def kept_labels(self, metric: Metric) -> tuple[int, ...] | None:
        """Positions of the labels kept, or None for all of them."""
        if self.info_labels is None or metric.name != INFO_METRIC:
            return None
        return tuple(
            i for i, name in enumerate(metric.labels) if name == "id" or name in self.info_labels
        )


INFO_METRIC = "modelarts_notebook_instance_info"
INFO_LABELS = ("name", "flavor", "flavor_type", "pool_id", "workspace_id", "user_name", "image")


# -- how each value is computed ------------------------------------------------------


def _one(value: float | None, *labels: str) -> Iterable[Sample]:
    return () if value is None else ((labels, float(value)),)


def _info(i: Instance, _: float) -> Iterable[Sample]:
    workspace = i.workspace.id if i.workspace else ""
    user = i.user.name if i.user else ""
    labels = (i.name, i.flavor_name, i.flavor_type, i.pool_id, workspace, user, i.image)
    return ((labels, 1.0),)


def _auto_stop_enabled(i: Instance, _: float) -> Iterable[Sample]:
    enabled = i.auto_stop.enable if i.auto_stop else None
    return _one(None if enabled is None else float(enabled))


def _stop_time(i: Instance, fetched_at: float) -> float | None:
    """Absolute stop time; from `remain_time` (relative to the fetch) when that is all we have."""
    auto_stop = i.auto_stop
    if auto_stop is None or auto_stop.enable is False:
        return None
    if auto_stop.stop_timestamp is not None:
        return auto_stop.stop_timestamp
    if auto_stop.remain_time is not None:
        return fetched_at + auto_stop.remain_time
    return None


def _queue(i: Instance) -> bool:
    return i.queuing_info is not None and i.status in QUEUING_STATUSES


def _queue_rank(i: Instance, _: float) -> Iterable[Sample]:
    return _one(i.queuing_info.rank if i.queuing_info and _queue(i) else None)


def _queue_end(i: Instance, fetched_at: float) -> Anchor | None:
    q = i.queuing_info
    if q is None or not _queue(i):
        return None
    if q.end_timestamp is not None:
        return (q.end_timestamp, -1.0)
    return (fetched_at + q.remain_time, -1.0) if q.remain_time is not None else None


def _queue_begin(i: Instance, _: float) -> Anchor | None:
    q = i.queuing_info
    if q is None or not _queue(i) or q.begin_timestamp is None:
        return None
    return (-q.begin_timestamp, 1.0)


def _stop_anchor(i: Instance, fetched_at: float) -> Anchor | None:
    stop = _stop_time(i, fetched_at)
    return None if stop is None else (stop, -1.0)


def _instance_counts(instances: Sequence[Instance]) -> Iterable[Sample]:
    counts = Counter((i.status, i.flavor_name, i.pool_id) for i in instances)
    seen = {status for status, _, _ in counts}
    for status in KNOWN_STATUSES:
        if status not in seen:  # so that `sum by (status)` always shows every status
            counts[(status, "", "")] = 0
    return sorted((labels, float(n)) for labels, n in counts.items())


def _flavor_field(field: str) -> Callable[[Sequence[Instance]], Iterable[Sample]]:
    def compute(instances: Sequence[Instance]) -> Iterable[Sample]:
        values: dict[str, float] = {}
        for i in instances:
            details = i.flavor_details
            if details is None:
                continue
            if field == "sold_out":
                if details.status:
                    values[i.flavor_name] = float(details.status == "soldOut")
            else:
                number = getattr(details, field)
                if number is not None:
                    values[i.flavor_name] = number
        return sorted(((flavor,), v) for flavor, v in values.items())

    return compute


def _pools(instances: Sequence[Instance]) -> Iterable[Sample]:
    pools = {
        (i.pool.id, i.pool.name, i.pool.type) if i.pool and i.pool.id else PUBLIC_POOL
        for i in instances
    }
    return sorted((pool, 1.0) for pool in pools)


def _age(s: TargetStatus, now: float) -> Iterable[Sample]:
    return _one(None if s.snapshot is None else max(0.0, now - s.snapshot.fetched_at))


def _by_code(counts: dict[str, int], *labels: str) -> Iterable[Sample]:
    return sorted(((*labels, code), float(n)) for code, n in counts.items())


# -- the table ---------------------------------------------------------------------

METRICS: tuple[Metric, ...] = (
    FleetMetric(
        "modelarts_notebook_instances",
        "Number of notebook instances by status, flavor and pool "
        "(every known status is present, 0 included).",
        ("status", "flavor", "pool_id"),
        value=_instance_counts,
    ),
    InstanceMetric(
        INFO_METRIC,
        "Descriptive labels of a notebook instance; always 1.",
        ("id", *INFO_LABELS),
        value=_info,
    ),
    InstanceMetric(
        "modelarts_notebook_instance_status",
        "Current status of a notebook instance; 1 for the status it is in.",
        ("id", "status"),
        value=lambda i, _: (((i.status,), 1.0),),
    ),
    InstanceMetric(
        "modelarts_notebook_instance_created_timestamp_seconds",
        "Creation time of a notebook instance, in Unix seconds.",
        ("id",),
        value=lambda i, _: _one(i.creation_timestamp),
    ),
    InstanceMetric(
        "modelarts_notebook_instance_updated_timestamp_seconds",
        "Last modification time of a notebook instance, in Unix seconds.",
        ("id",),
        value=lambda i, _: _one(i.latest_update_timestamp),
    ),
    InstanceMetric(
        "modelarts_notebook_instance_auto_stop_enabled",
        "1 if the notebook instance stops by itself after its running duration, else 0.",
        ("id",),
        value=_auto_stop_enabled,
    ),
    InstanceMetric(
        "modelarts_notebook_instance_auto_stop_timestamp_seconds",
        "Time at which the notebook instance will stop by itself, in Unix seconds, where known.",
        ("id",),
        value=lambda i, fetched_at: _one(_stop_time(i, fetched_at)),
    ),
    CountdownMetric(
        "modelarts_notebook_instance_auto_stop_remaining_seconds",
        "Seconds until the notebook instance stops by itself, computed at scrape time "
        "(never negative), where known.",
        ("id",),
        anchor=_stop_anchor,
    ),
    InstanceMetric(
        "modelarts_notebook_instance_queue_rank",
        "Position of the notebook instance in its queue, while it is queued.",
        ("id",),
        value=_queue_rank,
    ),
    CountdownMetric(
        "modelarts_notebook_instance_queue_remaining_seconds",
        "Estimated seconds the notebook instance has left in its queue, computed at scrape time.",
        ("id",),
        anchor=_queue_end,
    ),
    CountdownMetric(
        "modelarts_notebook_instance_queue_wait_seconds",
        "Seconds since the notebook instance joined its queue, computed at scrape time.",
        ("id",),
        anchor=_queue_begin,
    ),
    InstanceMetric(
        "modelarts_notebook_instance_error_info",
        "1 while the notebook instance reports an error code or failure reason.",
        ("id", "error_code"),
        value=lambda i, _: () if i.error is None else (((i.error,), 1.0),),
    ),
    FleetMetric(
        "modelarts_notebook_flavor_sold_out",
        "1 if the flavor is sold out, 0 if it is on sale.",
        ("flavor",),
        value=_flavor_field("sold_out"),
    ),
    FleetMetric(
        "modelarts_notebook_flavor_queue_length",
        "Instances queuing for the flavor, where reported (free sold-out flavors).",
        ("flavor",),
        value=_flavor_field("queuing_num"),
    ),
    FleetMetric(
        "modelarts_notebook_flavor_queue_left_seconds",
        "Estimated queue time for the flavor in seconds, where reported.",
        ("flavor",),
        value=_flavor_field("queue_left_time"),
    ),
    FleetMetric(
        "modelarts_notebook_pool_info",
        "Resource pools in use; an empty pool_id is the public pool. Always 1.",
        ("pool_id", "pool_name", "pool_type"),
        value=_pools,
    ),
    ExporterMetric(
        "modelarts_up",
        "1 if the last refresh from ModelArts succeeded, else 0.",
        (),
        value=lambda s, _: (((), float(s.up)),),
    ),
    ExporterMetric(
        "modelarts_exporter_last_refresh_success_timestamp_seconds",
        "Time of the last successful refresh, in Unix seconds.",
        (),
        value=lambda s, _: _one(s.last_success),
    ),
    ExporterMetric(
        "modelarts_exporter_data_age_seconds",
        "Age of the notebook data this scrape serves, in seconds.",
        (),
        value=_age,
    ),
    ExporterMetric(
        "modelarts_exporter_refresh_duration_seconds",
        "Duration of the last refresh from ModelArts, in seconds.",
        (),
        value=lambda s, _: _one(s.last_duration),
    ),
    ExporterMetric(
        "modelarts_exporter_api_requests_total",
        "Requests sent to ModelArts, by HTTP status code or error.",
        ("code",),
        type="counter",
        value=lambda s, _: _by_code(s.telemetry.requests),
    ),
    ExporterMetric(
        "modelarts_exporter_auth_requests_total",
        "Requests sent to IAM or the ECS metadata service for credentials, "
        "by HTTP status or error.",
        ("code",),
        type="counter",
        value=lambda s, _: _by_code(s.telemetry.auth_requests),
    ),
    ExporterMetric(
        "modelarts_exporter_clock_skew_seconds",
        "The API gateway's clock minus the local clock, from the Date header of its answers; "
        "signatures are refused beyond 900 seconds.",
        (),
        value=lambda s, _: _one(s.telemetry.clock_skew),
    ),
    ExporterMetric(
        "modelarts_exporter_invalid_instances_total",
        "Instance records skipped because they could not be read.",
        (),
        type="counter",
        value=lambda s, _: (((), float(s.invalid_total)),),
    ),
    ExporterMetric(
        "modelarts_exporter_build_info",
        "Version of the exporter; always 1.",
        ("version",),
        per_project=False,
        value=lambda s, _: (((__version__,), 1.0),),
    ),
)

BY_NAME = {metric.name: metric for metric in METRICS}
