"""Sharding a targets file over several replicas: `--config.shard=I/N`.

Replica I of N takes the targets whose name hashes to I: `crc32(name) % N == I`. CRC-32
(zlib) is the same in every process, Python version and platform, unlike `hash()`, which
is salted per process; so every replica agrees on who takes what without talking to the
others, and a target keeps its shard across restarts and reloads.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

_SHARD = re.compile(r"^(\d{1,4})/(\d{1,4})$")
T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Replica `index` of `count`, counted from 0."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def takes(self, name: str) -> bool:
        return shard_of(name, self.count) == self.index

    def select(self, targets: Mapping[str, T]) -> dict[str, T]:
        """The targets of this shard, in the file's order."""
        return {name: value for name, value in targets.items() if self.takes(name)}


def shard_of(name: str, count: int) -> int:
    """The shard, of `count`, that takes the target called `name`."""
    return zlib.crc32(name.encode("utf-8")) % count


def parse_shard(value: str) -> Shard | None:
    """`I/N` with 0 <= I < N → Shard; "" → None (every target). Raises ValueError."""
    if not value.strip():
        return None
    match = _SHARD.match(value.strip())
    if not match:
        raise ValueError("must be I/N (this replica's index from 0, then the number of shards)")
    index, count = int(match[1]), int(match[2])
    if count < 1:
        raise ValueError("the number of shards N must be at least 1")
    if index >= count:
        raise ValueError(f"the index I must be from 0 to {count - 1} (N - 1)")
    return Shard(index, count)
