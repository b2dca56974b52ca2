"""The lab with hosts as systemd containers (`dvr-lab up --backend containers`), up once
for the session (~40 s) and down at the end, when nothing of it may be left: no container,
network or image in podman's storage, no namespace, no /run/dvr-lab. Tests see it as the
namespace lab's tests do (a LabWorld, the same leftovers removed after each), so the
scenarios of tests/lab run here unchanged (test_parity.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dvr_agent.lab import layout
from dvr_agent.lab.container_hosts import ContainerHosts
from dvr_agent.lab.lab import Lab
from tests.fixtures import guard
from tests.fixtures.containers import podman_session  # noqa: F401
from tests.fixtures.lab import assert_lab_gone, leftovers_removed  # noqa: F401
from tests.lab.world import LabWorld
from tests.root_conftest import leak_guard, session_leak_guard  # noqa: F401


def _lab_pids() -> set[int]:
    """Processes in the lab's namespaces, VMs excepted: the containers' (systemd restarts
    agents and OVS on purpose in the tests) and podman's conmon in the fabric."""
    inodes = {os.stat(f"/run/netns/{name}").st_ino for name in os.listdir("/run/netns")
              if layout.is_lab_namespace(name) and not name.startswith(layout.vm_netns(""))}
    pids = set()
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.stat(f"/proc/{entry}/ns/net").st_ino in inodes:
                pids.add(int(entry))
        except OSError:
            pass
    return pids


@pytest.fixture(scope="session")
def lab(podman_session: str) -> Iterator[LabWorld]:  # noqa: F811
    the_lab = Lab(backend=ContainerHosts(f"{podman_session}lab"),
                  progress=lambda line: print(f"lab: {line}"))
    undo = guard.expect_processes(_lab_pids)
    try:
        the_lab.up()
        yield LabWorld(the_lab)
    finally:
        the_lab.down()
        undo()
    assert_lab_gone()
