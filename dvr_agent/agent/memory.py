"""How the agent asks glibc's allocator to keep its footprint down.

Measured (benchmarks/README.md, fix 18): after a cold sync at 1,000 routers the agent's
peak RSS was 163-168 MB, although its live Python objects were ~95 MB. The rest was the
allocator's: glibc gives every thread that allocates under contention an arena of its
own (up to 8 per core; the agent has a pool of reader threads, the comparison's, the
OVSDB, RPC and GARP threads), and the large short-lived buffers of netlink dumps (read
1 MB at a time) raise its dynamic mmap threshold, after which they are carved from those
arenas and leave them fragmented. Two arenas, and buffers of 128 KiB or more always
mapped and unmapped, took the peak to 143 MB at no measurable cost in a cold sync.
Through mallopt(3) rather than MALLOC_* variables so that it holds however the agent is
started (systemd, a container, a test); a libc without mallopt (musl) is left as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

LOG = logging.getLogger(__name__)

# mallopt(3) parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

SETTINGS = ((M_ARENA_MAX, 2), (M_MMAP_THRESHOLD, 128 * 1024), (M_TRIM_THRESHOLD, 256 * 1024))


def tune_allocator() -> bool:
    """Apply SETTINGS; call before the first thread starts. False if this libc has no
    mallopt (glibc's answers 1 to every call, so there is nothing more to check)."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        LOG.debug("no mallopt in this libc: the allocator keeps its defaults")
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    for param, value in SETTINGS:
        mallopt(param, value)
    return True


def release_free_memory() -> bool:
    """Give the pages glibc holds free back to the system (malloc_trim(0)); False if this
    libc cannot. Called once a start-up has converged: at 1,000 routers its passes held
    the desired and the read-back state of every router at once, and what they freed
    stays in the heap's middle, which only a trim returns (benchmarks/README.md, fix 31).
    """
    malloc_trim = _libc_function("malloc_trim")
    if malloc_trim is None:
        return False
    malloc_trim.argtypes, malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
    malloc_trim(0)
    return True


def _libc_function(name: str):
    """The C library's ``name``, or None where this libc has no such function (musl)."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None
