"""The units under real systemd: one systemd container from the project image for the
session, with the controller and a node installed as an operator would (node.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dvr_agent.lab import podman
from tests.fixtures.containers import (
    mount_cgroups_like_the_machine,
    podman_images,
    podman_leaks,
)
from tests.root_conftest import leak_guard, session_leak_guard  # noqa: F401
from tests.systemd.node import HOST, Node, Vm, wait_for

PREFIX = f"dvr-test{os.getpid()}-"


@pytest.fixture(scope="session")
def podman_session(session_leak_guard) -> Iterator[str]:  # noqa: F811 - after the snapshot
    """Podman usable in the isolated session; at the end, nothing of ours left in it."""
    mount_cgroups_like_the_machine()
    if not podman.succeeds("image", "exists", podman.IMAGE):
        pytest.exit(f"no image {podman.IMAGE}: run `make image` first", returncode=2)
    images = podman_images()
    yield PREFIX
    leaks = podman_leaks(PREFIX, images)
    podman.remove_containers(PREFIX)
    if leaks:
        pytest.fail(f"left in podman's storage: {', '.join(leaks)}")


@pytest.fixture(scope="session")
def node(podman_session: str) -> Iterator[Node]:
    box = podman.SystemdContainer.start(f"{podman_session}{HOST}", hostname=HOST)
    try:
        the_node = Node(box)
        the_node.install_controller()
        the_node.install_node()
        yield the_node
    finally:
        box.remove()


@pytest.fixture(scope="session")
def east_west(node: Node) -> tuple[Vm, Vm]:
    """Two VMs on two subnets of one router, on the node; their ping crosses the router."""
    node.ensure_agent_running()
    for args in (("network", "create", "ew1"),
                 ("subnet", "create", "ew1", "10.0.1.0/24", "--name", "ew1-sub"),
                 ("network", "create", "ew2"),
                 ("subnet", "create", "ew2", "10.0.2.0/24", "--name", "ew2-sub"),
                 ("router", "create", "ew"),
                 ("router", "add-interface", "ew", "ew1-sub"),
                 ("router", "add-interface", "ew", "ew2-sub")):
        node.ctl(*args)
    vm1, vm2 = node.boot_vm("ew-vm1", "ew1"), node.boot_vm("ew-vm2", "ew2")
    wait_for("vm1 reaching vm2 through the router", lambda: node.ping(vm1, vm2.ip))
    return vm1, vm2
