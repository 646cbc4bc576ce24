"""The exporter as a prometheus_client `Collector`, built from the same metric table.

The HTTP server serves `render.Renderer`'s cached bytes; this collector is the plain,
uncached equivalent, for embedding the exporter in another registry and as the oracle
the tests compare the renderer against. `describe()` never calls the API.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from exporter.exposition.formats import family_name
from exporter.exposition.kinds import Line
from exporter.exposition.metrics import METRICS, PER_SCRAPE, PER_SECOND, PER_SNAPSHOT
from exporter.exposition.status import TargetStatus


class ModelArtsCollector(Collector):
    def __init__(
        self,
        sources: Callable[[], Sequence[TargetStatus]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sources = sources
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        return [_family(m.name, m.help, m.type) for m in METRICS]

    def collect(self) -> Iterable[Metric]:
        statuses = self._sources()
        now = self._clock()
        second = math.floor(now)
        snapshots = [s.snapshot for s in statuses if s.snapshot is not None]
        families: dict[str, Metric] = {}
        for metric in PER_SNAPSHOT:
            family = families[metric.name] = _family(metric.name, metric.help, metric.type)
            for snapshot in snapshots:
                _add(family, snapshot.series(metric))
        for countdown in PER_SECOND:
            family = families[countdown.name] = _family(countdown.name, countdown.help, "gauge")
            names = countdown.label_names
            for snapshot in snapshots:
                found = snapshot.countdowns[countdown.name]
                values = found.values(second)
                _add(
                    family,
                    (
                        (countdown.name, names, (snapshot.project_id, id_), float(v))
                        for id_, v in zip(found.ids, values, strict=True)
                    ),
                )
        for exporter in PER_SCRAPE:
            family = families[exporter.name] = _family(exporter.name, exporter.help, exporter.type)
            names = exporter.label_names
            for status in statuses if exporter.per_project else statuses[:1]:
                project = (status.project_id,) if exporter.per_project else ()
                _add(
                    family,
                    (
                        (exporter.name, names, (*project, *labels), v)
                        for labels, v in exporter.samples(status, now)
                    ),
                )
        return [families[m.name] for m in METRICS]


def _add(family: Metric, lines: Iterable[Line]) -> None:
    for name, names, values, value in lines:
        family.add_sample(name, dict(zip(names, values, strict=True)), value)


def _family(name: str, help: str, type: str) -> Metric:
    return Metric(family_name(name, type), help, type)
