"""The exporter as a prometheus_client `Collector`, built from the same metric table.

The HTTP server serves `render.Renderer`'s cached bytes; this collector is the plain,
uncached equivalent, for embedding the exporter in another registry and as the oracle
the tests compare the renderer against. `describe()` never calls the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.cache import TargetStatus
from exporter.exposition import label_names
from exporter.metrics import METRICS
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
                project = [status.project_id] if metric.per_project else []
                for labels, value in metric.samples(status, now):
                    family.add_metric([*project, *labels], value)
            yield family


def _family(metric: MetricDef) -> GaugeMetricFamily | CounterMetricFamily:
    cls = CounterMetricFamily if metric.type == "counter" else GaugeMetricFamily
    return cls(metric.name, metric.help, labels=list(label_names(metric)))
