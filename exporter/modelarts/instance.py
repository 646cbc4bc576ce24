"""A notebook as the exporter sees it, whichever API listed it.

Flat, slotted and with its repeated strings interned: a snapshot holds every notebook of
a project between refreshes, and the nested response models would take twenty times the
memory (about 10 kB a notebook against 0.5 kB).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Instance:
    id: str
    status: str
    name: str = ""
    flavor: str = ""
    flavor_type: str = ""  # CPU | GPU | Ascend (one spelling on both APIs)
    pool_id: str = ""  # "" is the public pool
    pool_name: str = ""
    pool_type: str = ""
    workspace_id: str = ""
    user_name: str = ""
    image: str = ""  # name:tag
    created: float | None = None  # Unix seconds
    updated: float | None = None
    auto_stop: bool | None = None  # enabled?
    auto_stop_type: str = ""  # TIMING (stops at a time) | IDLE (stops when idle: no time)
    stop_timestamp: float | None = None  # when it stops by itself (from remain_time if need be)
    error: str | None = None  # the error code ("" when the API gives only a reason)
    reason: str = ""  # the failure reason in words, at most REASON_LENGTH characters
    flavor_sale: str = ""  # onSale | soldOut
    flavor_queue_length: float | None = None  # notebooks queuing for the flavor
    flavor_queue_left: float | None = None  # estimated queue time of the flavor
    queued: bool = False  # the API reports queuing information
    queue_rank: float | None = None
    queue_begin: float | None = None
    queue_end: float | None = None  # (from remain_time if need be)
    # What the notebook was given, where known (its flavor, or its custom spec).
    cpu: float | None = None  # cores
    memory: float | None = None  # bytes
    gpu: float | None = None  # cards
    npu: float | None = None  # cards
    accelerator: str = ""  # the GPU or NPU model: T4, A100, Ascend910B

    def __post_init__(self) -> None:
        # Statuses, flavors, pools, users and images repeat across a fleet: share them;
        # and the few sizes flavors give (each float is an object of 24 bytes).
        for name in _INTERNED:
            value = getattr(self, name)
            if type(value) is str:
                object.__setattr__(self, name, sys.intern(value))
        for name in _SIZES:
            value = getattr(self, name)
            if type(value) is float:
                object.__setattr__(self, name, _shared(value))


REASON_LENGTH = 100  # a label value: long enough to read, short enough to stay a label

_INTERNED = tuple(
    f.name for f in fields(Instance) if f.type == "str" and f.name not in ("id", "name")
)
_SIZES = ("cpu", "memory", "gpu", "npu")
_SHARED: dict[float, float] = {}
_MAX_SHARED = 4096  # sizes come from a few flavors; a bound all the same


def _shared(value: float) -> float:
    found = _SHARED.get(value)
    if found is not None:
        return found
    if len(_SHARED) < _MAX_SHARED and value == value:  # NaN never finds itself
        _SHARED[value] = value
    return value
