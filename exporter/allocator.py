"""glibc's allocator told to give memory back: two arenas, large blocks always mapped.

A refresh allocates and frees tens of megabytes at a time: pages of records, and the
exposition of a fleet (80 MB at 50,000 notebooks). With glibc's defaults the resident size
grows well past what is in use, for two reasons. First, each thread that allocates gets
an arena of its own (up to eight per core), and what it frees stays there. Second, once
a large block is freed, the size above which blocks are mapped (and unmapped when freed)
rises to that block's size, so the next ones come from the heap, which fragments and
does not shrink. docs/performance.md has the figures.

`tune()` does what `MALLOC_ARENA_MAX=2` and `MALLOC_MMAP_THRESHOLD_=262144` in the
environment do; a value set there wins. `trim()`, after each refresh, hands back the
pages that what the refresh freed left resident inside the heap (a heap shrinks only
from its top by itself), so that the next refresh's peak starts lower: 8 MiB less at
50,000 notebooks (docs/performance.md). Elsewhere than glibc (musl, macOS) both do
nothing.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

_M_MMAP_THRESHOLD = -3  # glibc malloc.h
_M_ARENA_MAX = -8
SETTINGS = {
    # name in the environment: (mallopt parameter, value)
    "MALLOC_ARENA_MAX": (_M_ARENA_MAX, 2),
    "MALLOC_MMAP_THRESHOLD_": (_M_MMAP_THRESHOLD, 256 * 1024),
}


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only: musl has mallopt but ignores these  # noqa: B018
        libc.mallopt.argtypes, libc.mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def tune() -> dict[str, int]:
    """Applies SETTINGS not already given in the environment; returns what it applied."""
    libc = _glibc()
    if libc is None:
        return {}
    mallopt = libc.mallopt
    applied = {}
    for name, (parameter, value) in SETTINGS.items():
        if name not in os.environ and mallopt(parameter, value) == 1:
            applied[name] = value
    return applied


def trim() -> bool:
    """Returns the heap's free pages to the system; whether there was a glibc to ask."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
