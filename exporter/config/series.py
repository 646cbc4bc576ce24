"""Cardinality controls for very large fleets (see docs/performance.md)."""

from __future__ import annotations

from dataclasses import dataclass

# The labels of `modelarts_notebook_instance_info` besides `id`, in their order.
INFO_LABELS = (
    "name",
    "flavor",
    "flavor_type",
    "pool_id",
    "workspace_id",
    "user_name",
    "image",
    "accelerator",
)


@dataclass(frozen=True)
class SeriesOptions:
    per_instance: bool = True  # False: only the per-project aggregates and exporter state
    info_labels: frozenset[str] | None = None  # labels of instance_info kept besides id; None: all
    per_user: bool = True  # False: no modelarts_notebook_user_instances
