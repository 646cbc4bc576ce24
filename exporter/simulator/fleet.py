"""A seeded, reproducible fleet of notebooks whose life moves on with the clock.

The first notebooks are *exhibits*: one per known status, held there (a notebook stuck
in CREATING, a failed start, a queued notebook...) so every status, alert and dashboard
panel has something to show at any moment. The rest live: they are created, queue for
the sold-out free flavor and move up the queue, start, run until their auto-stop time,
stop, restart, resize, occasionally fail, and are deleted and replaced.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exporter.modelarts.statuses import DEMANAGER_STATUSES, NOTEBOOKS_ONLY_STATUSES


@dataclass(frozen=True)
class Flavor:
    name: str
    type: str  # flavor_details.type: CPU | GPU | ASCEND
    profile_type: str  # profile.flavor_type: CPU | GPU | Ascend
    cpu: int
    gpu: int
    free: bool = False
    sold_out: bool = False
    pool: str | None = None  # only offered in this dedicated pool


FLAVORS = (
    Flavor("modelarts.vm.cpu.2u", "CPU", "CPU", 2, 0),
    Flavor("modelarts.vm.cpu.8u", "CPU", "CPU", 8, 0),
    Flavor("modelarts.vm.cpu.free", "CPU", "CPU", 1, 0, free=True),
    Flavor("modelarts.vm.gpu.free", "GPU", "GPU", 4, 1, free=True, sold_out=True),
    Flavor("modelarts.vm.gpu.t4", "GPU", "GPU", 8, 1),
    Flavor("modelarts.bm.gpu.v100NV32", "GPU", "GPU", 8, 1),
    Flavor("modelarts.bm.gpu.a100.8", "GPU", "GPU", 64, 8, pool="pool-7f3c2a91"),
    Flavor("modelarts.bm.ascend.910b", "ASCEND", "Ascend", 24, 1, pool="pool-1b8e4d07"),
)
POOLS = {
    "pool-7f3c2a91": "vision-a100",
    "pool-1b8e4d07": "nlp-ascend-910b",
}
USERS = ("ops_dev_env", "li.wei", "zhang.min", "a.kumar", "m.garcia", "chen.jing", "o.smith")
IMAGES = (
    ("mul-kernel-cpu-cp36", "2.0.5-B003"),
    ("mul-kernel-gpu-cuda-cp36", "2.0.5-B003"),
    ("pytorch2.1.0-cuda11.8-cudnn8-ubuntu20.04", "1.0.2"),
    ("mindspore2.2.0-cann7.0-py3.9-euler2.10", "7.0.1"),
)
ERRORS = {
    "CREATE_FAILED": ("ModelArts.6404", "Insufficient resources in the pool."),
    "START_FAILED": ("ModelArts.6309", "Failed to pull the image."),
    "RESIZE_FAILED": ("ModelArts.6410", "The target flavor is sold out."),
    "UNAVAILABLE": ("ModelArts.6501", "The node hosting the notebook is faulty."),
}
# How the newer API names the statuses it shares with the older one in other words.
V2_STATUS = {
    "CREATE_QUEUING": "INIT",
    "START_QUEUING": "STARTING",
    "READY_TO_START": "STARTING",
    "RESTARTING": "STARTING",
    "RESIZING": "STOPPING",
    "UNAVAILABLE": "ERROR",
    "RESIZE_FAILED": "ERROR",
}
V2_ERRORS = {
    "ERROR": ("", "The notebook's container exited unexpectedly."),
    "DELETE_FAILED": ("", "Failed to release the EVS volume."),
}
# How long each transitional status lasts, (min, max) seconds, before its next status.
DURATIONS = {
    "CREATE_QUEUING": (120, 600),
    "START_QUEUING": (120, 600),
    "CREATING": (40, 150),
    "READY_TO_START": (10, 40),
    "STARTING": (20, 90),
    "RESTARTING": (30, 90),
    "STOPPING": (15, 45),
    "RESIZING": (60, 180),
}
TICK = 5.0  # seconds of simulated life per step
PRUNE_DELETED_AFTER = 600.0


@dataclass
class Notebook:
    id: str
    name: str
    flavor: Flavor
    user: str
    image: tuple[str, str]
    workspace: str
    created: float
    status: str
    updated: float
    exhibit: bool = False
    duration: int = 3600  # auto-stop after this many seconds of running
    auto_stop: bool = True
    stop_at: float | None = None
    queue_begin: float | None = None
    queue_end: float | None = None
    next_change: float = 0.0
    relative_only: bool = False  # report remain_time without stop_timestamp, as some pages do

    def record(self, now: float, queue_rank: int | None, queue_length: int) -> dict[str, Any]:
        """The instance as the list API returns it."""
        flavor = self.flavor
        params: dict[str, Any] = {
            "CPU": flavor.cpu,
            "GPU": flavor.gpu,
            "memory": f"{flavor.cpu * 4}GiB",
        }
        details: dict[str, Any] = {
            "name": flavor.name,
            "params": params,
            "status": "soldOut" if flavor.sold_out else "onSale",
            "type": flavor.type,
            "promo_type": "Free" if flavor.free else "NoDiscount",
        }
        if flavor.free and flavor.sold_out:
            details["queuing_num"] = queue_length
            details["queue_left_time"] = 180 * queue_length
        auto_stop: dict[str, Any] = {
            "duration": self.duration,
            "enable": self.auto_stop,
            "prompt": True,
        }
        if self.status == "RUNNING" and self.auto_stop and self.stop_at is not None:
            auto_stop["remain_time"] = max(0, int(self.stop_at - now))
            if not self.relative_only:
                auto_stop["stop_timestamp"] = _ms(self.stop_at)
        error = ERRORS.get(self.status)
        record: dict[str, Any] = {
            "ai_project": {"id": "default-ai-project"},
            "creation_timestamp": str(_ms(self.created)),
            "description": "",
            "flavor": flavor.name,
            "flavor_details": details,
            "id": self.id,
            "latest_update_timestamp": str(_ms(self.updated)),
            "name": self.name,
            "profile": {
                "de_type": "Notebook",
                "flavor_type": flavor.profile_type,
                "provision": {
                    "spec": {
                        "engine": "CCE",
                        "params": {"image_name": self.image[0], "image_tag": self.image[1]},
                    },
                    "type": "Docker",
                },
            },
            "spec": {
                "auto_stop": auto_stop,
                "failed_reasons": {"code": error[0], "message": error[1]} if error else None,
                "storage": {"type": "evs", "location": {"path": "/home/ma-user/work"}},
            },
            "status": self.status,
            "user": {"id": _user_id(self.user), "name": self.user},
            "workspace": {"id": self.workspace},
        }
        if flavor.pool:
            record["pool"] = {"id": flavor.pool, "name": POOLS[flavor.pool], "type": "USER_DEFINED"}
        if error:
            record["error_code"] = error[0]
        if self.status in ("CREATE_QUEUING", "START_QUEUING") and queue_rank is not None:
            record["queuing_info"] = {
                "id": self.id,
                "name": self.name,
                "de_type": "Notebook",
                "flavor": flavor.name,
                "status": self.status,
                "begin_timestamp": _ms(self.queue_begin or now),
                "end_timestamp": _ms(self.queue_end or now),
                "remain_time": max(0, int((self.queue_end or now) - now)),
                "rank": queue_rank,
            }
        return record

    def record_v2(self, now: float) -> dict[str, Any]:
        """The notebook as the newer `/notebooks` API returns it."""
        status = V2_STATUS.get(self.status, self.status)
        running = self.status == "RUNNING" and self.stop_at is not None
        lease_start = (self.stop_at or now) - self.duration if running else self.updated
        record: dict[str, Any] = {
            "id": self.id.removeprefix("DE-"),
            "name": self.name,
            "description": "",
            "feature": "NOTEBOOK",
            "flavor": self.flavor.name,
            "status": status,
            "create_at": _ms(self.created),
            "update_at": _ms(self.updated),
            "image": {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, self.image[0])),
                "name": self.image[0],
                "swr_path": f"swr.example.com/atelier/{self.image[0]}:{self.image[1]}",
                "type": "BUILD_IN",
            },
            "lease": {
                "create_at": _ms(lease_start),
                "update_at": _ms(lease_start),
                "duration": self.duration * 1000,
                "enable": self.auto_stop,
                "type": "TIMING",
            },
            "user": {"id": _user_id(self.user), "name": self.user, "domain": "acme"},
            "workspace_id": self.workspace,
            "volume": {"category": "EVS", "ownership": "MANAGED", "capacity": 50},
        }
        if self.flavor.pool:
            record["pool"] = {"id": self.flavor.pool, "name": POOLS[self.flavor.pool]}
        error = ERRORS.get(self.status) or V2_ERRORS.get(status)
        if error:
            record["fail_reason"] = error[1]
        return record


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _user_id(name: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_DNS, name).hex


@dataclass
class Fleet:
    """`records(now)` is the fleet as the API would list it at `now`."""

    size: int = 60
    seed: int = 7
    clock: Callable[[], float] = time.time
    evolve: bool = True
    notebooks: list[Notebook] = field(init=False, default_factory=list)
    # Created through the newer API only: listed by `/notebooks`, not by `demanager`.
    newer_only: list[Notebook] = field(init=False, default_factory=list)
    version: int = field(init=False, default=0)  # bumps whenever a record may have changed

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._serial = 0
        self._now = self.clock()
        for index in range(self.size):
            exhibit = index < len(DEMANAGER_STATUSES)
            status = DEMANAGER_STATUSES[index] if exhibit else self._initial_status()
            self.notebooks.append(self._new(status, self._now, exhibit=exhibit))
        for status in (*NOTEBOOKS_ONLY_STATUSES, "RUNNING", "STOPPED"):
            self.newer_only.append(self._new(status, self._now, exhibit=True))

    # -- life ---------------------------------------------------------------------------

    def advance(self, now: float | None = None) -> None:
        """Move the fleet's life on to `now`, one tick at a time."""
        now = self.clock() if now is None else now
        with self._lock:
            if not self.evolve:
                self._now = now
                return
            while self._now + TICK <= now:
                self._now += TICK
                self._step(self._now)
                self.version += 1

    def records(self, now: float | None = None) -> list[dict[str, Any]]:
        now = self.clock() if now is None else now
        self.advance(now)
        with self._lock:
            ranks, lengths = self._queues()
            return [
                nb.record(now, ranks.get(nb.id), lengths.get(nb.flavor.name, 0))
                for nb in self.notebooks
            ]

    def records_v2(self, now: float | None = None) -> list[dict[str, Any]]:
        """The fleet as the newer API lists it: every notebook, and those only it knows."""
        now = self.clock() if now is None else now
        self.advance(now)
        with self._lock:
            return [nb.record_v2(now) for nb in (*self.notebooks, *self.newer_only)]

    def _step(self, now: float) -> None:
        rng = self._rng
        for nb in self.newer_only:
            self._refresh_exhibit(nb, now)
        for nb in list(self.notebooks):
            if nb.exhibit:
                self._refresh_exhibit(nb, now)
            elif nb.status == "RUNNING" and nb.auto_stop and nb.stop_at and now >= nb.stop_at:
                self._move(nb, "STOPPING", now)
            elif nb.status == "RUNNING" and rng.random() < 0.002:
                self._move(
                    nb, rng.choice(("RESTARTING", "RESIZING", "STOPPING", "UNAVAILABLE")), now
                )
            elif nb.status == "STOPPED" and rng.random() < 0.01:
                self._move(nb, "START_QUEUING" if nb.flavor.sold_out else "STARTING", now)
            elif nb.status.endswith("FAILED") or nb.status == "UNAVAILABLE":
                if rng.random() < 0.005:
                    self._move(nb, "DELETED", now)
            elif nb.status == "DELETED" and now - nb.updated > PRUNE_DELETED_AFTER:
                self.notebooks.remove(nb)
            elif nb.status in DURATIONS and now >= nb.next_change:
                self._move(nb, self._after(nb.status), now)
        while len(self.notebooks) < self.size:
            self.notebooks.append(
                self._new("CREATE_QUEUING" if rng.random() < 0.3 else "CREATING", now)
            )

    def _after(self, status: str) -> str:
        rng = self._rng
        if status == "CREATING":
            return "CREATE_FAILED" if rng.random() < 0.05 else "RUNNING"
        if status == "STARTING":
            return "START_FAILED" if rng.random() < 0.05 else "RUNNING"
        if status == "RESIZING":
            return "RESIZE_FAILED" if rng.random() < 0.1 else "RUNNING"
        return {
            "CREATE_QUEUING": "CREATING",
            "START_QUEUING": "READY_TO_START",
            "READY_TO_START": "STARTING",
            "RESTARTING": "RUNNING",
            "STOPPING": "STOPPED",
        }[status]

    def _move(self, nb: Notebook, status: str, now: float) -> None:
        nb.status = status
        nb.updated = now
        low, high = DURATIONS.get(status, (0, 0))
        nb.next_change = now + self._rng.uniform(low, high)
        if status == "RUNNING":
            nb.stop_at = now + nb.duration
        if status in ("CREATE_QUEUING", "START_QUEUING"):
            nb.queue_begin, nb.queue_end = now, nb.next_change

    def _refresh_exhibit(self, nb: Notebook, now: float) -> None:
        """Exhibits hold their status; their clocks restart so countdowns stay meaningful."""
        if nb.status == "RUNNING" and nb.stop_at is not None and now >= nb.stop_at:
            nb.stop_at = now + nb.duration
        if nb.queue_end is not None and now >= nb.queue_end:
            nb.queue_begin, nb.queue_end = now, now + 300

    def _queues(self) -> tuple[dict[str, int], dict[str, int]]:
        """Rank within each flavor's queue (by the time it joined), and each queue's length."""
        queued = sorted(
            (nb for nb in self.notebooks if nb.status in ("CREATE_QUEUING", "START_QUEUING")),
            key=lambda nb: (nb.flavor.name, nb.queue_begin or 0, nb.id),
        )
        ranks: dict[str, int] = {}
        counts: dict[str, int] = {}
        for nb in queued:
            counts[nb.flavor.name] = counts.get(nb.flavor.name, 0) + 1
            ranks[nb.id] = counts[nb.flavor.name]
        return ranks, counts

    # -- birth --------------------------------------------------------------------------

    def _initial_status(self) -> str:
        weights = {
            "RUNNING": 40,
            "STOPPED": 30,
            "CREATING": 3,
            "STARTING": 3,
            "STOPPING": 2,
            "CREATE_QUEUING": 4,
            "START_QUEUING": 3,
            "DELETED": 2,
        }
        return self._rng.choices(list(weights), weights=list(weights.values()))[0]

    def _new(self, status: str, now: float, exhibit: bool = False) -> Notebook:
        rng = self._rng
        self._serial += 1
        queued = status in ("CREATE_QUEUING", "START_QUEUING")
        flavor = FLAVORS[3] if queued else rng.choice(FLAVORS)
        created = now - rng.uniform(600, 30 * 86400)
        # Exhibits in a transitional status have been there long: they are the stuck ones.
        updated = now - (rng.uniform(3600, 7200) if exhibit else rng.uniform(0, 600))
        nb = Notebook(
            id=f"DE-{uuid.UUID(int=rng.getrandbits(128), version=4)}",
            name=f"notebook-{self._serial:04d}-{rng.getrandbits(16):04x}",
            flavor=flavor,
            user=rng.choice(USERS),
            image=IMAGES[2 if flavor.gpu else 0] if flavor.type != "ASCEND" else IMAGES[3],
            workspace="0",
            created=min(created, updated),
            status=status,
            updated=updated,
            exhibit=exhibit,
            duration=rng.choice((3600, 7200, 14400)),
            auto_stop=rng.random() < 0.9 or exhibit,
            relative_only=rng.random() < 0.1,
        )
        low, high = DURATIONS.get(status, (0, 0))
        nb.next_change = now + rng.uniform(low, high)
        if status == "RUNNING":
            nb.stop_at = now + rng.uniform(60 if exhibit else 0, nb.duration)
        if queued:
            nb.queue_begin = now - rng.uniform(0, 300)
            nb.queue_end = now + rng.uniform(60, 900)
        return nb
