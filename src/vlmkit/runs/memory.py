"""Process-level memory policy for jobs that allocate and free large arrays in a loop.

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh ``mmap``
and returns it on ``free``, so a loop that allocates an ``(N, M)`` score matrix per batch pays the
kernel to zero and map those pages again each time (SITH on a ViT-L/14: 3.7 s of system time in
a 25.6 s run, 1.0 s with this policy, ``benchmarks/sith_bench.py``). :func:`reuse_freed_memory`
keeps freed memory in the heap for the next allocation instead; peak resident memory stays what
the largest live set needs.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4


def reuse_freed_memory() -> bool:
    """Serve large allocations from the heap and never trim it (glibc only; elsewhere a no-op).
    Returns whether both settings were taken (mallopt refuses one by returning 0)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already uses
    except (OSError, AttributeError):  # a libc without mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    no_mmap = bool(mallopt(M_MMAP_MAX, 0))
    no_trim = bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    return no_mmap and no_trim
