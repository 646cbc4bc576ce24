"""When each client will scrape next, and a job run just before it.

Prometheus scrapes a target at a fixed interval and a fixed phase, so a client's next
scrape comes its last interval after its last one. `Ahead` keeps the time of each
client's last scrape and, after each scrape, schedules the client's job for the second
the next one should fall in (and the neighbouring second when the prediction is within
`margin` of a boundary: jitter), to run `lead` seconds before it. It predicts only from
an interval within [`min_interval`, `max_interval`]: no prediction from a burst, none
held for long; and it remembers at most `clients` clients, forgetting the least recently
seen, so however many hosts scrape, its memory stays bounded. A client's new prediction
replaces its pending one.

One daemon thread, started with the first prediction, waits for the next job and runs it
through `run_due(now)`, never holding the scheduler's lock while a job runs; tests call
`run_due` themselves at a fake time (`thread=False`). A job that fails is logged and
forgotten: what it would have prepared is then made when it is needed, as without it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

log = logging.getLogger(__name__)

MIN_INTERVAL = 0.9  # seconds: a scrape every second, give or take its jitter
MAX_INTERVAL = 3600.0
LEAD = 0.5  # s before the predicted scrape; one format's countdowns: ~8 ms at 10k notebooks
MARGIN = 0.1  # seconds from a boundary within which the neighbouring second is made too
CLIENTS = 64
_MAX_WAIT = 60.0  # the thread looks at the clock again at least this often (clock jumps)

Job = Callable[[int], None]  # prepares what a scrape within that second will need


@dataclass(frozen=True)
class _Pending:
    seq: int
    job: Job
    seconds: tuple[int, ...]


class Ahead:
    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        thread: bool = True,
        clients: int = CLIENTS,
        lead: float = LEAD,
        margin: float = MARGIN,
        min_interval: float = MIN_INTERVAL,
        max_interval: float = MAX_INTERVAL,
    ) -> None:
        self._clock = clock
        self._threaded = thread
        self._clients = clients
        self._lead = lead
        self._margin = margin
        self._min_interval = min_interval
        self._max_interval = max_interval
        self._cond = threading.Condition()
        self._last: OrderedDict[Hashable, float] = OrderedDict()  # client → its last scrape
        self._pending: dict[Hashable, _Pending] = {}  # client → its next job
        self._heap: list[tuple[float, int, Hashable]] = []  # (due, seq, client)
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def scraped(self, client: Hashable, at: float, job: Job) -> float | None:
        """`client` was served a scrape at `at`: the predicted time of its next one, its
        job scheduled ahead of it; None when there is no prediction."""
        with self._cond:
            previous = self._last.pop(client, None)
            self._last[client] = at
            while len(self._last) > self._clients:
                forgotten, _ = self._last.popitem(last=False)
                self._pending.pop(forgotten, None)
            if previous is None or not self._min_interval <= at - previous <= self._max_interval:
                return None
            predicted = at + (at - previous)
            seq = next(self._seq)
            self._pending[client] = _Pending(seq, job, self._seconds(predicted))
            heapq.heappush(self._heap, (predicted - self._lead, seq, client))
            if len(self._heap) > 2 * self._clients:
                self._compact()
            if self._threaded and self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="ahead", daemon=True)
                self._thread.start()
            self._cond.notify()
            return predicted

    def clients(self) -> int:
        """How many clients are remembered (at most `clients`)."""
        with self._cond:
            return len(self._last)

    def pending(self) -> dict[Hashable, tuple[float, tuple[int, ...]]]:
        """Each client's scheduled job: when it is due and the seconds it prepares."""
        with self._cond:
            due = {seq: at for at, seq, _ in self._heap}
            return {c: (due[p.seq], p.seconds) for c, p in self._pending.items()}

    def run_due(self, now: float) -> float | None:
        """Runs the jobs due at `now`, outside the lock; when the next is due, if any."""
        jobs: list[_Pending] = []
        with self._cond:
            while self._heap and self._heap[0][0] <= now:
                _, seq, client = heapq.heappop(self._heap)
                pending = self._pending.get(client)
                if pending is not None and pending.seq == seq:  # not replaced since
                    del self._pending[client]
                    jobs.append(pending)
        for pending in jobs:
            for second in pending.seconds:
                try:
                    pending.job(second)
                except Exception:
                    log.exception("rendering ahead of a scrape failed")
        with self._cond:
            return self._heap[0][0] if self._heap else None

    def close(self) -> None:
        """Stops the thread (for tests; the daemon thread otherwise ends with the process)."""
        with self._cond:
            self._closed = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout=5)

    def _seconds(self, predicted: float) -> tuple[int, ...]:
        second = math.floor(predicted)
        seconds = [second]
        if predicted - second < self._margin:
            seconds.append(second - 1)
        if second + 1 - predicted < self._margin:
            seconds.append(second + 1)
        return tuple(seconds)

    def _compact(self) -> None:
        """Drops the heap's entries of replaced or forgotten predictions."""
        self._heap = [
            entry
            for entry in self._heap
            if (pending := self._pending.get(entry[2])) is not None and pending.seq == entry[1]
        ]
        heapq.heapify(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                wait = self._heap[0][0] - self._clock() if self._heap else _MAX_WAIT
                if wait > 0:
                    self._cond.wait(min(wait, _MAX_WAIT))
                    continue
            self.run_due(self._clock())
