"""`canned`: a loopback server of canned answers standing in for the ModelArts API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.canned import Canned


@pytest.fixture
def canned() -> Iterator[Canned]:
    with Canned() as server:
        yield server
