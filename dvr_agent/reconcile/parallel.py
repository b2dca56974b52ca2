"""Run a pass's independent jobs side by side, or in the caller when there is just one.

A pass over many namespaces reads and writes them on a pool (the kernel work of one
overlaps the Python of another), and talks to each bridge's ovs-vswitchd socket through
an ``ovs-ofctl`` process of its own: 15-100 ms each at 300 routers, mostly waiting, so
the bridges are done side by side, not one after the other. An event's pass has one
namespace: handing it to a pool thread and waiting for it is two thread switches, each
of which, while another thread holds the GIL, costs up to the interpreter's switch
interval (5 ms); an ARP event has only a few milliseconds of work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, wait
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


def run_all(executor: Executor, jobs: Mapping[K, Callable[[], T]]) -> dict[K, T]:
    """Run ``jobs`` side by side and return their results once every one has finished.

    The first error (in the order of ``jobs``) is raised only then: a caller that retries
    after a failure must not race a job of the first attempt still running.
    """
    futures = submit_all(executor, jobs)
    wait(futures.values())
    return {key: future.result() for key, future in futures.items()}


def errors_of_all(executor: Executor, jobs: Mapping[K, Callable[[], object]],
                  ) -> dict[K, Exception]:
    """Run ``jobs`` side by side; once every one has finished, the error of each that
    failed (the others are done): for a caller that retries only what failed. What is
    not an Exception (a KeyboardInterrupt in a job) is raised, not handed back."""
    futures = submit_all(executor, jobs)
    wait(futures.values())
    errors: dict[K, Exception] = {}
    for key, future in futures.items():
        exc = future.exception()
        if exc is not None and not isinstance(exc, Exception):
            raise exc
        if exc is not None:
            errors[key] = exc
    return errors
