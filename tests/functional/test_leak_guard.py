"""The leak guard itself: it must see and remove what a test leaves behind."""

import os
import subprocess
import time

from pyroute2 import IPRoute, netns

from tests.fixtures import guard


def test_guard_names_and_removes_a_leaked_namespace_link_and_process():
    before = guard.snapshot()
    netns.create("dvrtest-leak")
    with IPRoute() as ipr:
        ipr.link("add", ifname="dvrtest-v0", kind="veth", peer="dvrtest-v1")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        message = guard.check_and_clean(before, "on purpose")
        assert message is not None
        for leaked in ("dvrtest-leak", "dvrtest-v0", "dvrtest-v1", f"{sleeper.pid} (sleep)",
                       f"parent {os.getpid()} (", "sleep 60"):  # whose, and what it ran
            assert leaked in message
        assert "dvrtest-leak" not in netns.listnetns()
        with IPRoute() as ipr:
            assert not ipr.link_lookup(ifname="dvrtest-v0")
        assert sleeper.wait(timeout=5) == -9
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


def test_guard_is_quiet_when_nothing_is_left():
    before = guard.snapshot()
    netns.create("dvrtest-clean")
    netns.remove("dvrtest-clean")
    time.sleep(0.01)
    assert guard.check_and_clean(before, "never") is None


def test_tests_run_in_a_private_network_namespace():
    """tests/isolated.py exec()s pytest: its parent (tox, make) is outside the namespace."""
    assert os.stat("/proc/self/ns/net").st_ino != os.stat(f"/proc/{os.getppid()}/ns/net").st_ino
    assert os.stat("/proc/self/ns/mnt").st_ino != os.stat(f"/proc/{os.getppid()}/ns/mnt").st_ino


def test_children_of_a_process_a_fixture_owns_are_the_fixtures():
    """A lab daemon's child (an agent's ovs-ofctl, say) is not the running test's leak."""
    before = guard.snapshot()
    daemon = subprocess.Popen(["sh", "-c", "sleep 60 & wait"])
    undo = guard.expect_processes(lambda: {daemon.pid})
    try:
        time.sleep(0.2)  # the child is running
        assert guard.check_and_clean(before, "never") is None
    finally:
        undo()
        daemon.kill()
        daemon.wait()
    message = guard.check_and_clean(before, "on purpose")  # the orphaned sleep
    assert message is not None and "(sleep)" in message
