"""The exporter as a prometheus_client `Collector`, built from the same metric table.

The HTTP server serves `render.Renderer`'s cached bytes; this collector is the plain,
uncached equivalent, for embedding the exporter in another registry and as the oracle
the tests compare the renderer against. `describe()` never calls the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from exporter.cache import TargetStatus
from exporter.exposition import label_names
from exporter.metrics import METRICS, Labels
from exporter.metrics import Metric as MetricDef


class ModelArtsCollector(Collector):
    def __init__(
        self,
        sources: Callable[[], Sequence[TargetStatus]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sources = sources
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        return [_family(metric) for metric in METRICS]

    def collect(self) -> Iterable[Metric]:
        statuses = self._sources()
        now = self._clock()
        for metric in METRICS:
            family = _family(metric)
            for status in statuses if metric.per_project else statuses[:1]:
                for names, labels, value in _series(metric, status, now):
                    family.add_sample(metric.name, dict(zip(names, labels, strict=True)), value)
            yield family


def _series(
    metric: MetricDef, status: TargetStatus, now: float
) -> Iterator[tuple[Labels, Labels, float]]:
    snapshot = status.snapshot
    if metric.static:
        if snapshot is not None:
            names, samples = snapshot.series(metric)
            yield from ((names, labels, value) for labels, value in samples)
        return
    if snapshot is not None and not snapshot.options.exports(metric):
        return
    names = label_names(metric)
    project = (status.project_id,) if metric.per_project else ()
    for labels, value in metric.samples(status, now):
        yield names, (*project, *labels), value


def _family(metric: MetricDef) -> Metric:
    return Metric(
        metric.family if metric.type == "counter" else metric.name, metric.help, metric.type
    )
