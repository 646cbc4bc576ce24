"""A seeded, reproducible fleet of notebooks whose life moves on with the clock.

The first notebooks are *exhibits*: one per known status, held there (a notebook stuck
in CREATING, a failed start, a queued notebook...) so every status, alert and dashboard
panel has something to show at any moment. The rest live: they are created, queue for
the sold-out free flavor and move up the queue, start, run until their auto-stop time,
stop, restart, resize, occasionally fail, and are deleted and replaced.

Some notebooks only the newer API lists (`newer_only`), all exhibits: one per status the
historical API lacks, and the kinds it cannot show: free CodeLab notebooks (feature
DEFAULT), notebooks in a second workspace, custom-spec notebooks on a dedicated pool, and
IDLE leases. They come from a random generator of their own, so adding them changed
nothing of the historical fleet (its ids, statuses, queues and life).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from exporter.modelarts.statuses import DEMANAGER_STATUSES, NOTEBOOKS_ONLY_STATUSES
from exporter.simulator.catalog import (
    CALLER,
    FLAVOR_BY_NAME,
    FLAVORS,
    IMAGES,
    SECOND_WORKSPACE,
    TEAM_IMAGE,
    USERS,
    CustomSpec,
    Notebook,
)
from exporter.simulator.records import demanager_record, notebook_record

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


class Extra(NamedTuple):
    """A newer-API-only notebook beyond the status exhibits."""

    name: str
    status: str
    user: str
    flavor: str
    workspace: str = "0"
    feature: str = "NOTEBOOK"
    lease_type: str = "TIMING"
    custom: CustomSpec | None = None


EXTRAS = (
    # CodeLab: free, at most one per user (SDK NotebookResp.feature DEFAULT).
    Extra("codelab-ops", "RUNNING", CALLER, "modelarts.vm.cpu.free", feature="DEFAULT"),
    Extra("codelab-li", "STOPPED", "li.wei", "modelarts.vm.cpu.free", feature="DEFAULT"),
    # A second workspace, so that the workspace filter matters.
    Extra(
        "ws-train-t4",
        "RUNNING",
        "a.kumar",
        "modelarts.vm.gpu.t4",
        SECOND_WORKSPACE,
        "NOTEBOOK",
        "IDLE",
    ),
    Extra("ws-eda", "RUNNING", CALLER, "modelarts.vm.cpu.8u", SECOND_WORKSPACE),
    Extra("ws-v100-old", "STOPPED", "m.garcia", "modelarts.bm.gpu.v100NV32", SECOND_WORKSPACE),
    # Custom specs on the A100 pool's nodes: `flavor` is then "custom.flavor.spec.code".
    Extra(
        "custom-2xa100",
        "RUNNING",
        "zhang.min",
        "modelarts.bm.gpu.a100.8",
        custom=CustomSpec(cpu=16.0, memory=131072, gpu=2.0, gpu_type="A100", category="GPU"),
    ),
    Extra(
        "custom-cpu-prep",
        "STOPPED",
        CALLER,
        "modelarts.bm.gpu.a100.8",
        custom=CustomSpec(cpu=3.5, memory=14336),
    ),
    Extra("idle-8u", "RUNNING", "chen.jing", "modelarts.vm.cpu.8u", lease_type="IDLE"),
)


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
        extras_rng = random.Random(f"{self.seed}/newer-only")
        self.newer_only.extend(self._extra(extra, self._now, extras_rng) for extra in EXTRAS)

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
                demanager_record(nb, now, ranks.get(nb.id), lengths.get(nb.flavor.name, 0))
                for nb in self.notebooks
            ]

    def records_v2(self, now: float | None = None) -> list[dict[str, Any]]:
        """The fleet as the newer API lists it: every notebook of every workspace and
        feature, and those only it knows (`/notebooks/all` without its filters)."""
        now = self.clock() if now is None else now
        self.advance(now)
        with self._lock:
            return [notebook_record(nb) for nb in (*self.notebooks, *self.newer_only)]

    def churn(self, share: float, now: float | None = None) -> int:
        """Change `share` of the notebooks at once, whether the fleet evolves or not: the
        benchmark's "5% changed" refresh. Non-exhibit notebooks RUNNING or STOPPED flip to
        the other status (their update time becomes `now`), chosen by the seed and the
        version, so the same fleet churns the same way; how many changed (fewer than asked
        if there are not so many such notebooks)."""
        now = self.clock() if now is None else now
        with self._lock:
            candidates = [
                nb
                for nb in self.notebooks
                if not nb.exhibit and nb.status in ("RUNNING", "STOPPED")
            ]
            wanted = min(round(share * len(self.notebooks)), len(candidates))
            if wanted <= 0:
                return 0
            chosen = random.Random(f"{self.seed}/churn/{self.version}").sample(candidates, wanted)
            for nb in chosen:
                self._move(nb, "STOPPED" if nb.status == "RUNNING" else "RUNNING", now)
            self.version += 1
            return wanted

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
            image=IMAGES[2 if flavor.cards else 0] if flavor.type != "ASCEND" else IMAGES[3],
            workspace="0",
            created=min(created, updated),
            status=status,
            updated=updated,
            exhibit=exhibit,
            duration=rng.choice((3600, 7200, 14400)),
            auto_stop=rng.random() < 0.9 or exhibit,
            relative_only=rng.random() < 0.1,
            volume_gb=50 if self._serial % 5 == 0 else 5,  # no draw: the sequence stays
        )
        low, high = DURATIONS.get(status, (0, 0))
        nb.next_change = now + rng.uniform(low, high)
        if status == "RUNNING":
            nb.stop_at = now + rng.uniform(60 if exhibit else 0, nb.duration)
        if queued:
            nb.queue_begin = now - rng.uniform(0, 300)
            nb.queue_end = now + rng.uniform(60, 900)
        return nb

    def _extra(self, extra: Extra, now: float, rng: random.Random) -> Notebook:
        """One of EXTRAS: an exhibit that only the newer API lists, under a UUID."""
        flavor = FLAVOR_BY_NAME[extra.flavor]
        updated = now - rng.uniform(3600, 7200)
        nb = Notebook(
            id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            name=extra.name,
            flavor=flavor,
            user=extra.user,
            image=TEAM_IMAGE if extra.custom else IMAGES[2 if flavor.cards else 0],
            workspace=extra.workspace,
            created=updated - rng.uniform(600, 30 * 86400),
            status=extra.status,
            updated=updated,
            exhibit=True,
            duration=3600 if extra.feature == "DEFAULT" else rng.choice((3600, 7200, 14400)),
            feature=extra.feature,
            lease_type=extra.lease_type,
            custom=extra.custom,
            volume_gb=50 if extra.custom else 5,
        )
        if extra.status == "RUNNING" and extra.lease_type == "TIMING":
            nb.stop_at = now + rng.uniform(60, nb.duration)
        return nb
