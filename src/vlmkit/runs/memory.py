"""Process-level memory policy for jobs that allocate and free large arrays in a loop.

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh ``mmap``
and returns it on ``free``, so a loop that allocates an ``(N, M)`` score matrix per batch pays the
kernel to zero and map those pages again each time (SITH on a ViT-L/14: about 2 s of system time
out of 25 s, ``benchmarks/sith_bench.py``). :func:`reuse_freed_memory` keeps freed memory in the
heap for the next allocation instead; peak resident memory is unchanged (it is what the largest
live set needs).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4


def reuse_freed_memory() -> bool:
    """Serve large allocations from the heap and never trim it (glibc only; elsewhere a no-op).
    Returns whether the policy is in force."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
