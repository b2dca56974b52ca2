"""The units under real systemd: one systemd container from the project image for the
session, with the controller and a node installed as an operator would (node.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dvr_agent.lab.podman import Podman
from tests.fixtures.containers import podman_session  # noqa: F401
from tests.root_conftest import leak_guard, session_leak_guard  # noqa: F401
from tests.systemd.node import HOST, Node, Vm, wait_for


@pytest.fixture(scope="session")
def node(podman_session: str) -> Iterator[Node]:  # noqa: F811
    box = Podman().start(f"{podman_session}{HOST}", hostname=HOST)
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
