"""The static part compressed block by block: whatever the blocks, the members decompress
to their bytes; an unchanged block is not compressed again."""

from __future__ import annotations

import dataclasses
import gzip
import random

from exporter.config.series import SeriesOptions
from exporter.exposition.formats import OPENMETRICS
from exporter.exposition.members import Members
from exporter.exposition.render import Renderer
from exporter.exposition.snapshot import BLOCK, Snapshot
from exporter.exposition.status import TargetStatus
from tests.unit.exposition.test_snapshot import PROJECT, T0, fleet


def blocks(seed: int, n: int = 40) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(0, 3000)) for _ in range(n)]


def test_the_members_decompress_to_the_blocks_in_order():
    given = [*blocks(1), b"same", b"same"]
    assert gzip.decompress(Members().compress(given)) == b"".join(given)


def test_an_unchanged_block_is_copied_and_a_changed_one_compressed():
    members = Members()
    first = blocks(2)
    members.compress(first)
    before = members.compressed
    second = list(first)
    second[5] = b"changed" + second[5]
    del second[9]
    second.insert(0, b"new")
    joined = members.compress(second)
    assert members.compressed - before == 2  # "changed..." and "new"
    assert gzip.decompress(joined) == b"".join(second)


def status(snapshot: Snapshot) -> TargetStatus:
    return TargetStatus(PROJECT, snapshot, up=True, last_success=T0)  # type: ignore[arg-type]


def test_a_refresh_recompresses_only_the_blocks_of_what_changed():
    before = fleet(2000)
    first = Snapshot(PROJECT, tuple(before), T0, SeriesOptions())
    current = [status(first)]
    renderer = Renderer(lambda: current, clock=lambda: T0 + 30, process_metrics=False)
    body = renderer.render(OPENMETRICS)
    assert gzip.decompress(b"".join(renderer.gzip(body))) == bytes(body)
    members = renderer._static[OPENMETRICS.name].members
    everything = members.compressed
    after = list(before)
    after[700] = dataclasses.replace(after[700], status="STOPPED")
    current[:] = [status(Snapshot(PROJECT, tuple(after), T0 + 30, previous=first))]
    body = renderer.render(OPENMETRICS)
    assert gzip.decompress(b"".join(renderer.gzip(body))) == bytes(body)
    again = members.compressed - everything
    # One notebook changed: its block of each per-notebook metric, and the fleet metrics.
    assert 0 < again < everything / 4
    assert everything > 2000 / BLOCK
