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
