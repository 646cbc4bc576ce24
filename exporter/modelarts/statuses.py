"""The statuses a notebook can be in, as the two list APIs name them."""

from __future__ import annotations

# The historical API's statuses, in lifecycle order.
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
# The newer Notebook API's statuses that the historical one does not have.
NOTEBOOKS_ONLY_STATUSES = ("INIT", "DELETING", "SNAPSHOTTING", "DELETE_FAILED", "ERROR", "FROZEN")
# `sum by (status)` of the instance counts always returns each of these.
KNOWN_STATUSES = DEMANAGER_STATUSES + NOTEBOOKS_ONLY_STATUSES
QUEUING_STATUSES = frozenset({"CREATE_QUEUING", "START_QUEUING"})
