"""The lab scenarios share one lab for the session: up once (~10 s), down at the end, and
the end of the session asserts that `dvr-lab down` left nothing behind."""

from __future__ import annotations

import os
import warnings

import pytest

from dvr_agent.lab import layout
from dvr_agent.lab.lab import Lab
from tests.fixtures import guard
from tests.lab.world import LabWorld
from tests.root_conftest import leak_guard, session_leak_guard  # noqa: F401


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


@pytest.fixture(scope="session")
def lab(session_leak_guard):  # noqa: F811 - ordering: the lab is made after the snapshot
    the_lab = Lab(progress=lambda line: print(f"lab: {line}"))
    undo = guard.expect_processes(_daemon_pids)
    try:
        the_lab.up()
        yield LabWorld(the_lab)
    finally:
        the_lab.down()
        undo()
        assert not [n for n in os.listdir("/run/netns") if layout.is_lab_namespace(n)]
        left = os.listdir(layout.BASE_DIR) if os.path.isdir(layout.BASE_DIR) else []
        assert not left, f"dvr-lab down left {left} in {layout.BASE_DIR}"


def _made(world: LabWorld) -> dict[str, set[str]]:
    """What scenarios make and must take away again, by kind: floating IPs, VMs, ports of
    no VM (VIPs), routers. Networks stay: scenarios never share an address range."""
    vm_ports = {vm["port_id"] for vm in world.lab.state.get("vms", {}).values()}
    return {
        "floatingip": {f["id"] for f in world.ctl("floatingip", "list")},
        "vm": set(world.lab.state.get("vms", {})),
        "port": {p["id"] for p in world.ctl("port", "list")
                 if p["device_owner"] in ("", "compute:nova") and p["id"] not in vm_ports},
        "router": {r["id"] for r in world.ctl("router", "list")},
    }


@pytest.fixture(autouse=True)
def leftovers_removed(request: pytest.FixtureRequest, leak_guard):  # noqa: F811
    """A scenario that fails halfway leaves what it made on the server (a floating IP
    keeps a fip namespace alive, a router its qrouters), and the next scenarios would
    see it. Remove it, in dependency order, after each test, and say so in a warning (the
    seed's scenarios leave a bare router or two, which a failure would be too harsh for).
    Runs before the leak guard's check (it depends on it), so the VMs it deletes are not
    reported as leaks too."""
    if "lab" not in request.fixturenames:  # test_down: no shared lab, nothing to look at
        yield
        return
    world: LabWorld = request.getfixturevalue("lab")
    before = _made(world)
    yield
    left = {kind: ids - before[kind] for kind, ids in _made(world).items()}
    for fip in sorted(left["floatingip"]):
        world.ctl("floatingip", "delete", fip)
    for name in sorted(left["vm"]):
        world.lab.vm_delete(name)
    for port in sorted(left["port"]):
        world.ctl("port", "delete", port)
    for router in sorted(left["router"]):
        world.delete_router({"id": router})
    if any(left.values()):
        warnings.warn(f"{request.node.name} left on the server (removed now): "
                      f"{ {k: sorted(v) for k, v in left.items() if v} }", stacklevel=1)
