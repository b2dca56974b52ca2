"""Run a pass's independent jobs side by side, or in the caller when there is just one.

A pass over many namespaces reads and writes them on a pool (the kernel work of one
overlaps the Python of another). An event's pass has one namespace: handing it to a
pool thread and waiting for it is two thread switches, each of which, while another
thread holds the GIL, costs up to the interpreter's switch interval (5 ms); an ARP event
has only a few milliseconds of work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from typing import TypeVar

K = TypeVar("K")
T = TypeVar("T")


def submit_all(executor: Executor, jobs: Mapping[K, Callable[[], T]]) -> dict[K, Future[T]]:
    """Futures of ``jobs``; a lone job has run, in this thread, when this returns."""
    if len(jobs) != 1:
        return {key: executor.submit(job) for key, job in jobs.items()}
    (key, job), = jobs.items()
    future: Future[T] = Future()
    try:
        future.set_result(job())
    except Exception as exc:  # handed over as a pool's future would: at result()
        future.set_exception(exc)
    return {key: future}
