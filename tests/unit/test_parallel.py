"""reconcile/parallel.py: a lone job runs in the caller, several on the pool, and a
job's error comes out of its future either way."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from dvr_agent.reconcile.parallel import run_all, submit_all


@pytest.fixture
def pool():
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="pool") as executor:
        yield executor


def test_a_lone_job_runs_in_the_calling_thread(pool):
    futures = submit_all(pool, {"a": threading.get_ident})
    assert futures["a"].result() == threading.get_ident()


def test_several_jobs_run_on_the_pool(pool):
    futures = submit_all(pool, {k: lambda: threading.current_thread().name for k in "ab"})
    assert all(f.result().startswith("pool") for f in futures.values())


@pytest.mark.parametrize("count", [1, 2])
def test_an_error_comes_out_of_its_future(pool, count):
    def broken():
        raise OSError("no such namespace")

    futures = submit_all(pool, {i: broken for i in range(count)})
    for future in futures.values():
        with pytest.raises(OSError, match="no such namespace"):
            future.result()


def test_run_all_raises_only_after_every_job_finished(pool):
    """A caller retrying after a failure must not race a job of the first attempt."""
    slow_done = threading.Event()

    def broken():
        raise OSError("bundle refused")

    def slow():
        time.sleep(0.2)
        slow_done.set()
        return "applied"

    with pytest.raises(OSError, match="bundle refused"):
        run_all(pool, {"br-int": broken, "br-tun": slow})
    assert slow_done.is_set()


def test_run_all_returns_every_result_by_key(pool):
    assert run_all(pool, {"a": lambda: 1, "b": lambda: 2}) == {"a": 1, "b": 2}
