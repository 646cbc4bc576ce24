"""What changed between two good listings of a project: status transitions, queue waits.

The list API says what is there now; the difference between two successive good listings
says what happened in between. A notebook listed in status A, then B, is one transition
(A, B); one that appears is (`absent`, B), one that disappears (A, `absent`). The first
listing after the exporter starts counts nothing, and a failed refresh changes nothing:
the next good listing is compared with the last good one. A change that happens and is
undone between two listings is not seen.

A notebook that leaves a queuing status (and is still listed) is observed once in the
queue-wait histogram of its flavor and queue: the fetch time of the first listing in
which it no longer queues minus its queue begin time, where the API gives one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from exporter.modelarts.instance import Instance
from exporter.modelarts.statuses import QUEUING_STATUSES

ABSENT = "absent"
QUEUE_WAIT_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0)


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts (one per bound of QUEUE_WAIT_BUCKETS), count and sum."""

    buckets: tuple[int, ...] = (0,) * len(QUEUE_WAIT_BUCKETS)
    count: int = 0
    sum: float = 0.0

    def observe(self, value: float) -> Histogram:
        buckets = tuple(
            n + (value <= bound) for n, bound in zip(self.buckets, QUEUE_WAIT_BUCKETS, strict=True)
        )
        return Histogram(buckets, self.count + 1, self.sum + value)


@dataclass(frozen=True)
class Changes:
    """Everything seen to change since the exporter started, for one project."""

    transitions: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (from, to)
    queue_waits: Mapping[tuple[str, str], Histogram] = field(
        default_factory=dict
    )  # (flavor, queue)

    def after(
        self, previous: Sequence[Instance] | None, current: Sequence[Instance], fetched_at: float
    ) -> Changes:
        """These changes and those between two successive good listings."""
        waits = dict(self.queue_waits)
        # A queue with notebooks in it has its histogram from the start, empty until the
        # first one leaves, so that dashboards show 0 rather than nothing.
        for instance in current:
            if instance.status in QUEUING_STATUSES:
                waits.setdefault((instance.flavor, instance.status), Histogram())
        if previous is None:
            return Changes(self.transitions, waits)
        transitions = Counter(self.transitions)
        before = {instance.id: instance for instance in previous}
        for instance in current:
            old = before.pop(instance.id, None)
            if old is None:
                transitions[(ABSENT, instance.status)] += 1
            elif old.status != instance.status:
                transitions[(old.status, instance.status)] += 1
                if old.status in QUEUING_STATUSES and old.queue_begin is not None:
                    key = (old.flavor, old.status)
                    waits[key] = waits.get(key, Histogram()).observe(
                        max(0.0, fetched_at - old.queue_begin)
                    )
        for gone in before.values():
            transitions[(gone.status, ABSENT)] += 1
        return Changes(dict(transitions), waits)
