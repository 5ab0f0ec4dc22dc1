"""Keeping freed memory in the process's heap, for runs that allocate the same large buffers
again and again.

glibc serves every allocation above 32 MiB with a fresh ``mmap`` and unmaps it when freed, so
each training step of a CNN (its potential traces are ``batch x T x neurons`` floats, ~50 MB a
layer) faulted in and zeroed hundreds of megabytes anew: 1.6 s a batch of 128 on this 2-core
machine, 0.6 s with the memory kept (docs/training.md). The arithmetic is untouched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["keep_freed_memory"]

# mallopt(3) parameters
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_INT_MAX = (1 << 31) - 1


@functools.cache
def keep_freed_memory() -> bool:
    """Serve large allocations from the heap and keep what is freed there (glibc); ``False``
    where the C library has no ``mallopt`` (then nothing changes)."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, _INT_MAX)
                and mallopt(_M_TOP_PAD, 64 << 20))
