"""Every metric the exporter serves, declared once: name, type, help, labels, how to compute.

This table drives the snapshot, the renderer, the collector, `docs/metrics.md` and the
tests. Every series but `modelarts_exporter_build_info` also carries `project_id`, put
first by the renderers; the `labels` below are the ones after it. The kinds, and when
each is computed, are in `kinds.py`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from operator import attrgetter

from exporter.build import build_info
from exporter.config.series import INFO_LABELS
from exporter.exposition.changes import Histogram
from exporter.exposition.kinds import (
    Anchor,
    CountdownMetric,
    ExporterMetric,
    FleetMetric,
    HistogramMetric,
    InstanceMetric,
    Labels,
    Listed,
    Metric,
    Sample,
    SnapshotMetric,
    TargetState,
    computed_when,
)
from exporter.modelarts.instance import Instance
from exporter.modelarts.statuses import KNOWN_STATUSES, QUEUING_STATUSES

PUBLIC_POOL = ("", "public", "PUBLIC")  # pool_id, pool_name, pool_type of the shared pool
INFO_METRIC = "modelarts_notebook_instance_info"


# -- how each value is computed ------------------------------------------------------


def _one(value: float | None, *labels: str) -> Iterable[Sample]:
    return () if value is None else ((labels, float(value)),)


def _info(i: Instance) -> Iterable[Sample]:
    return ((tuple(getattr(i, name) for name in INFO_LABELS), 1.0),)


# resource, unit, and where an Instance keeps it
RESOURCES = (
    ("cpu", "core", "cpu"),
    ("memory", "byte", "memory"),
    ("gpu", "card", "gpu"),
    ("npu", "card", "npu"),
)


def _resources(i: Instance) -> Iterable[Sample]:
    for resource, unit, attribute in RESOURCES:
        amount = getattr(i, attribute)
        if amount is not None:
            yield (resource, unit), float(amount)


def _resource_totals(listed: Listed) -> Iterable[Sample]:
    # Grouped first, then summed a resource at a time: this runs over the whole fleet at
    # every refresh, and a tuple per notebook and resource cost more than all the rest.
    groups: dict[tuple[str, str, str], list[Instance]] = {}
    for i in listed.instances:
        groups.setdefault((i.status, i.flavor, i.pool_id), []).append(i)
    totals: dict[Labels, float] = {}
    for group, members in groups.items():
        for resource, unit, attribute in RESOURCES:
            amounts = [a for a in map(attrgetter(attribute), members) if a is not None]
            if amounts:
                key = (*group, resource, unit)
                totals[key] = float(sum(amounts))
    return sorted(totals.items())


def _per_user(listed: Listed) -> Iterable[Sample]:
    counts = Counter((i.user_name, i.status) for i in listed.instances)
    return sorted((labels, float(n)) for labels, n in counts.items())


def _transitions(listed: Listed) -> Iterable[Sample]:
    return sorted((pair, float(n)) for pair, n in listed.changes.transitions.items())


def _queue_waits(listed: Listed) -> Iterable[tuple[Labels, Histogram]]:
    return sorted(listed.changes.queue_waits.items())


def _stop_time(i: Instance) -> float | None:
    return None if i.auto_stop is False else i.stop_timestamp


def _queue(i: Instance) -> bool:
    return i.queued and i.status in QUEUING_STATUSES


def _queue_end(i: Instance) -> Anchor | None:
    return (i.queue_end, -1.0) if _queue(i) and i.queue_end is not None else None


def _queue_begin(i: Instance) -> Anchor | None:
    return (-i.queue_begin, 1.0) if _queue(i) and i.queue_begin is not None else None


def _stop_anchor(i: Instance) -> Anchor | None:
    stop = _stop_time(i)
    return None if stop is None else (stop, -1.0)


def _instance_counts(listed: Listed) -> Iterable[Sample]:
    counts = Counter((i.status, i.flavor, i.pool_id) for i in listed.instances)
    seen = {status for status, _, _ in counts}
    for status in KNOWN_STATUSES:
        if status not in seen:  # so that `sum by (status)` always shows every status
            counts[(status, "", "")] = 0
    return sorted((labels, float(n)) for labels, n in counts.items())


def _per_flavor(
    value: Callable[[Instance], float | None],
) -> Callable[[Listed], Iterable[Sample]]:
    """One sample per flavor, from the last notebook that reports it (a notebook of the
    newer API, which reports nothing of its flavor's queue, never hides one that does)."""

    def compute(listed: Listed) -> Iterable[Sample]:
        found = {i.flavor: v for i in listed.instances if (v := value(i)) is not None}
        return sorted(((flavor,), v) for flavor, v in found.items())

    return compute


def _sold_out(listed: Listed) -> Iterable[Sample]:
    """What the notebooks' records say of their flavors (the historical API), then every
    flavor of the newer API's flavors listing."""
    found = {i.flavor: float(i.flavor_sale == "soldOut") for i in listed.instances if i.flavor_sale}
    found.update((f.name, float(f.sold_out)) for f in listed.flavors if f.sold_out is not None)
    return sorted(((flavor,), v) for flavor, v in found.items())


def _pools(listed: Listed) -> Iterable[Sample]:
    pools = {
        (i.pool_id, i.pool_name, i.pool_type) if i.pool_id else PUBLIC_POOL
        for i in listed.instances
    }
    return sorted((pool, 1.0) for pool in pools)


def _age(s: TargetState, now: float) -> Iterable[Sample]:
    return _one(None if s.fetched_at is None else max(0.0, now - s.fetched_at))


def _by_code(counts: dict[str, int], *labels: str) -> Iterable[Sample]:
    return sorted(((*labels, code), float(n)) for code, n in counts.items())


def _build_labels() -> tuple[str, ...]:
    """modelarts_exporter_build_info's labels: what was built, and the Python running it."""
    info = build_info()
    return (info.version, info.revision, info.branch, info.python_version)


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
        value=lambda i: (((i.status,), 1.0),),
    ),
    InstanceMetric(
        "modelarts_notebook_instance_created_timestamp_seconds",
        "Creation time of a notebook instance, in Unix seconds.",
        ("id",),
        value=lambda i: _one(i.created),
    ),
    InstanceMetric(
        "modelarts_notebook_instance_updated_timestamp_seconds",
        "Last modification time of a notebook instance, in Unix seconds.",
        ("id",),
        value=lambda i: _one(i.updated),
    ),
    InstanceMetric(
        "modelarts_notebook_instance_auto_stop_enabled",
        "1 if the notebook instance stops by itself, else 0; type TIMING stops it at a time "
        "(auto_stop_timestamp_seconds), IDLE when it is idle.",
        ("id", "type"),
        value=lambda i: _one(None if i.auto_stop is None else float(i.auto_stop), i.auto_stop_type),
    ),
    InstanceMetric(
        "modelarts_notebook_instance_auto_stop_timestamp_seconds",
        "Time at which the notebook instance will stop by itself, in Unix seconds, where known.",
        ("id",),
        value=lambda i: _one(_stop_time(i)),
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
        value=lambda i: _one(i.queue_rank if _queue(i) else None),
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
        "1 while the notebook instance reports an error; error_code is the API's code (empty "
        "when it gives none), reason its words (the first 100 characters).",
        ("id", "error_code", "reason"),
        value=lambda i: () if i.error is None else (((i.error, i.reason), 1.0),),
    ),
    FleetMetric(
        "modelarts_notebook_flavor_sold_out",
        "1 if the flavor is sold out, 0 if it is on sale.",
        ("flavor",),
        value=_sold_out,
    ),
    FleetMetric(
        "modelarts_notebook_flavor_queue_length",
        "Instances queuing for the flavor, where reported (free sold-out flavors).",
        ("flavor",),
        value=_per_flavor(lambda i: i.flavor_queue_length),
    ),
    FleetMetric(
        "modelarts_notebook_flavor_queue_left_seconds",
        "Estimated queue time for the flavor in seconds, where reported.",
        ("flavor",),
        value=_per_flavor(lambda i: i.flavor_queue_left),
    ),
    InstanceMetric(
        "modelarts_notebook_instance_resource_requests",
        "What the notebook instance was given, where known: cpu in cores, memory in bytes, "
        "gpu and npu in cards (its flavor, or its custom spec).",
        ("id", "resource", "unit"),
        value=_resources,
    ),
    FleetMetric(
        "modelarts_notebook_resource_requests",
        "The resources given to the notebooks, summed by status, flavor and pool, "
        "with per-notebook series switched off too.",
        ("status", "flavor", "pool_id", "resource", "unit"),
        value=_resource_totals,
    ),
    FleetMetric(
        "modelarts_notebook_user_instances",
        "Notebook instances per user and status (user_name empty where the API gives none).",
        ("user_name", "status"),
        per_user=True,
        value=_per_user,
    ),
    FleetMetric(
        "modelarts_notebook_status_transitions_total",
        "Status changes seen between two successive good listings; absent for a notebook "
        "that appears or disappears. Changes undone between two listings are not seen.",
        ("from", "to"),
        type="counter",
        value=_transitions,
    ),
    HistogramMetric(
        "modelarts_notebook_queue_wait_seconds",
        "Time notebooks waited in a queue, observed when they leave it: the first listing "
        "without the queue minus the queue's begin time.",
        ("flavor", "queue"),
        value=_queue_waits,
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
        "modelarts_exporter_flavor_listing_failures_total",
        "Flavors listings of the newer API that failed; the last good one is kept.",
        (),
        type="counter",
        value=lambda s, _: (((), float(s.telemetry.flavor_failures)),),
    ),
    ExporterMetric(
        "modelarts_exporter_invalid_instances_total",
        "Instance records skipped because they could not be read.",
        (),
        type="counter",
        value=lambda s, _: (((), float(s.invalid_total)),),
    ),
    ExporterMetric(
        "modelarts_exporter_target_info",
        "The target of the series of this project_id: its name, region and list API; always 1.",
        ("target", "region", "api"),
        value=lambda s, _: ((s.target, 1.0),),
    ),
    ExporterMetric(
        "modelarts_exporter_build_info",
        "Version, revision and branch the exporter was built from, and the Python running "
        "it; always 1.",
        ("version", "revision", "branch", "pythonversion"),
        per_project=False,
        value=lambda s, _: ((_build_labels(), 1.0),),
    ),
)


PER_SNAPSHOT = computed_when(METRICS, "snapshot", SnapshotMetric)
PER_SECOND = computed_when(METRICS, "second", CountdownMetric)
PER_SCRAPE = computed_when(METRICS, "scrape", ExporterMetric)
