"""An exposition parsed by prometheus_client, to assert on like the metrics read."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class MetricValues:
    """Samples of one exposition, to assert on like the metrics read."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def __call__(self, name: str, **labels: str) -> float:
        """The value of the one series of `name` whose labels include `labels`."""
        found = self.all(name, **labels)
        assert len(found) == 1, f"{name}{labels}: expected one series, found {found}"
        return next(iter(found.values()))

    def all(self, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
        wanted = set(labels.items())
        return {
            key: value
            for (metric, key), value in self.samples.items()
            if metric == name and wanted <= key
        }

    def has(self, name: str, **labels: str) -> bool:
        return bool(self.all(name, **labels))

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(key)[label] for key in self.all(name)}


def parse_exposition(text: str) -> MetricValues:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return MetricValues(samples)
