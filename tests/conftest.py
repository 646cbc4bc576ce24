"""Shared fixtures: the vendor's example responses, a simulator, and `metric_values`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.simulator import Fleet, Simulator

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def require_tool(name: str) -> str:
    """The path of a tool the test needs; a missing tool fails the test, never skips it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: .ci/run installs it (Debian package prometheus)")
    return path


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


@pytest.fixture
def metric_values() -> type[MetricValues] | object:
    """`metric_values(text)` → MetricValues of that exposition."""
    return parse_exposition


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    with Simulator(Fleet(size=60, seed=7)) as sim:
        yield sim
