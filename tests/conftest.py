"""Shared fixtures: `metric_values`, a simulator; and the markers of each test folder.

`tests/unit` is the fast loop (`scripts/check --fast`); `tests/integration` runs real
processes, Prometheus and the load test; `tests/deploy` the chart, image and compose stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.simulator import Fleet, Simulator
from tests.support.exposition import MetricValues, parse_exposition

_FOLDER_MARKERS = ("unit", "integration", "deploy")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(item.path).relative_to(Path(__file__).parent).parts[0]
        if folder in _FOLDER_MARKERS:
            item.add_marker(folder)


@pytest.fixture
def metric_values() -> type[MetricValues] | object:
    """`metric_values(text)` → MetricValues of that exposition."""
    return parse_exposition


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    with Simulator(Fleet(size=60, seed=7)) as sim:
        yield sim
