"""The lab scenarios share one lab for the session: up once (~10 s), down at the end, and
the end of the session asserts that `dvr-lab down` left nothing behind."""

from __future__ import annotations

import os
import pathlib

import pytest

from dvr_agent.lab import layout
from dvr_agent.lab.lab import Lab
from tests.fixtures import guard
from tests.fixtures.lab import assert_lab_gone, leftovers_removed  # noqa: F401
from tests.lab.world import LabWorld
from tests.root_conftest import (  # noqa: F401
    leak_guard,
    pytest_runtest_makereport,
    session_leak_guard,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """test_down makes and removes a lab of its own, so it must run before the shared lab
    is up; file order alone put test_cli (which brings the shared lab up) first."""
    items.sort(key=lambda item: item.module.__name__ != "tests.lab.test_down")


def _daemon_pids() -> set[int]:
    """Processes living in the lab's own namespaces (hosts, controller): the agents, OVS,
    RabbitMQ with its children. VMs are the tests' and stay checked."""
    inodes = set()
    for name in os.listdir("/run/netns"):
        if layout.is_lab_namespace(name) and not name.startswith(layout.vm_netns("")):
            inodes.add(os.stat(f"/run/netns/{name}").st_ino)
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino in inodes:
                    pids.add(int(entry))
            except OSError:
                pass
    return pids


def _keep_logs(the_lab: Lab, where: pathlib.Path) -> None:
    """Every daemon's log, copied before `dvr-lab down` deletes them (a failure is then
    read from the logs, not guessed)."""
    for target in ["controller", *(h.name for h in the_lab.hosts)]:
        try:
            (where / f"{target}.log").write_text(the_lab.logs(target))
        except Exception as exc:  # a host that never came up has no log
            (where / f"{target}.log").write_text(f"no log: {exc}\n")
    print(f"lab: a test failed; the daemons' logs are in {where}")


@pytest.fixture(scope="session")
def lab(session_leak_guard, request, tmp_path_factory):  # noqa: F811 - ordering: the lab is made after the snapshot
    the_lab = Lab(progress=lambda line: print(f"lab: {line}"))
    undo = guard.expect_processes(_daemon_pids)
    try:
        the_lab.up()
        yield LabWorld(the_lab)
    finally:
        if request.session.testsfailed:
            _keep_logs(the_lab, tmp_path_factory.mktemp("lab-logs"))
        the_lab.down()
        undo()
        assert_lab_gone()
