"""agent/memory.py: the allocator is tuned where glibc's mallopt exists, and a libc
without it is left alone without an error."""

import ctypes

from dvr_agent.agent import memory


def test_glibc_takes_the_settings():
    assert memory.tune_allocator() is True


def test_a_libc_without_mallopt_is_left_as_it_is(monkeypatch):
    class NoMallopt:
        def __init__(self, _name):
            pass

    monkeypatch.setattr(ctypes, "CDLL", NoMallopt)
    assert memory.tune_allocator() is False


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_memory_freed_amid_kept_blocks_goes_back_to_the_system():
    """What a start-up frees between the objects it keeps stays resident until a trim:
    80 MB of 4 KB blocks (glibc's, not Python's small-object arenas), one in 64 kept."""
    blocks = [bytes(4000) for _ in range(20_000)]
    kept = blocks[::64]
    del blocks
    before = _rss_kib()
    assert memory.release_free_memory() is True
    assert _rss_kib() < before - 40_000, "less than 40 MB of the 78 MB freed went back"
    del kept  # alive until here: the kept blocks are what fragments the heap
