"""The static part compressed block by block, an unchanged block's member reused.

Gzip members may be concatenated (RFC 1952 §2.2), so the static part can be compressed as
one member per block and a block whose bytes are those of a block compressed last time
needs no compressing: its member is copied from the last result. Compressing the static
part of 50,000 notebooks (80 MB) at level 6 takes about 0.6 s, most of what a refresh of
an unchanged fleet costs besides the listing itself; hashing it takes a tenth of that.

The blocks are cut at notebooks, not at byte offsets (`Snapshot.blocks`): a notebook that
appears or goes changes its own block only. A block is known by a 128-bit BLAKE2b digest
of its bytes; one `Members` per format holds the last result and where each block's
member lies in it, nothing more.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Sequence

GZIP_LEVEL = 6


def gzip_member(data: bytes | memoryview | Sequence[bytes], level: int = GZIP_LEVEL) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: with a gzip header
    chunks = [data] if isinstance(data, (bytes, memoryview)) else data
    return b"".join([*(compressor.compress(c) for c in chunks), compressor.flush()])


class Members:
    """Compresses blocks into concatenated gzip members, reusing the last call's members
    for blocks with the same bytes. Not thread-safe: one caller at a time."""

    def __init__(self, level: int = GZIP_LEVEL) -> None:
        self.level = level
        self._last = b""
        self._where: dict[bytes, tuple[int, int]] = {}  # digest → member's place in _last
        self.compressed = 0  # blocks compressed, not reused (for tests and the curious)

    def compress(self, blocks: Iterable[bytes | memoryview]) -> bytes:
        old = memoryview(self._last)
        members: list[bytes | memoryview] = []
        now: dict[bytes, bytes | memoryview] = {}  # this call's member of each digest
        where: dict[bytes, tuple[int, int]] = {}
        end = 0
        for block in blocks:
            if not len(block):
                continue
            digest = hashlib.blake2b(block, digest_size=16).digest()
            member = now.get(digest)
            if member is None:
                found = self._where.get(digest)
                if found is not None:
                    member = old[found[0] : found[1]]
                else:
                    member = gzip_member(block, self.level)
                    self.compressed += 1
                now[digest] = member
                where[digest] = (end, end + len(member))
            members.append(member)
            end += len(member)
        joined = b"".join(members)
        self._last, self._where = joined, where
        return joined
