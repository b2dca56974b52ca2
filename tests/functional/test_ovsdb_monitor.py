"""Port events from the OVSDB driver, including across an ovsdb-server restart."""

from __future__ import annotations

import queue

import pytest

from dvr_agent.drivers.errors import DriverError
from dvr_agent.drivers.ovsdb import Ovsdb, PortEvent
from dvr_agent.state import Bridge

WAIT = 30.0


@pytest.fixture
def watched(ovs):
    events: queue.Queue[PortEvent] = queue.Queue()
    with Ovsdb(ovs.db, timeout=60) as driver:
        driver.apply(add_bridges=[Bridge("br-int", "netdev")])
        driver.watch(events.put)
        yield driver, events


def _next(events: queue.Queue, kind: str, name: str | None = None) -> PortEvent:
    """The first event of ``kind`` (for port ``name``), skipping others; fails after WAIT s."""
    while True:
        try:
            event = events.get(timeout=WAIT)
        except queue.Empty:
            pytest.fail(f"no {kind} event for {name} within {WAIT} s")
        if event.kind == kind and (name is None or event.port.name == name):
            return event


def _add_vm_port(ovs, name: str, iface_id: str) -> None:
    ovs.vsctl("add-port", "br-int", name, "--", "set", "Interface", name, "type=internal",
              f"external_ids:iface-id={iface_id}", "external_ids:attached-mac=fa:16:3e:00:00:01")


def test_a_vm_port_added_and_removed_by_ovs_vsctl_gives_added_and_removed(ovs, watched):
    _, events = watched
    _add_vm_port(ovs, "tap-vm1", "port-1")
    added = _next(events, "added", "tap-vm1")
    assert added.port.external_ids["iface-id"] == "port-1"
    assert added.port.bridge == "br-int"

    ovs.vsctl("del-port", "br-int", "tap-vm1")
    removed = _next(events, "removed", "tap-vm1")
    assert removed.port.external_ids["iface-id"] == "port-1"


def test_retagging_a_vm_port_gives_an_updated_event_with_the_new_tag(ovs, watched):
    _, events = watched
    _add_vm_port(ovs, "tap-vm1", "port-1")
    _next(events, "added", "tap-vm1")
    ovs.vsctl("set", "Port", "tap-vm1", "tag=9")
    while (updated := _next(events, "updated", "tap-vm1")).port.tag != 9:
        pass  # an earlier update (the ofport arriving) may come first
    assert updated.port.ofport is not None


def test_ports_without_iface_id_give_no_events(ovs, watched):
    _, events = watched
    ovs.vsctl("add-port", "br-int", "plain0", "--", "set", "Interface", "plain0", "type=internal")
    _add_vm_port(ovs, "tap-vm2", "port-2")
    first = _next(events, "added")
    assert first.port.name == "tap-vm2"  # plain0 came first and was not reported


def test_after_an_ovsdb_restart_resync_comes_and_a_port_added_meanwhile_is_seen(ovs, watched):
    driver, events = watched
    _add_vm_port(ovs, "tap-vm1", "port-1")
    _next(events, "added", "tap-vm1")

    ovs.restart_ovsdb()
    _add_vm_port(ovs, "tap-vm3", "port-3")  # before the driver's reconnect backoff ends

    _next(events, "resync")
    added = _next(events, "added", "tap-vm3")
    assert added.port.external_ids["iface-id"] == "port-3"
    assert {"tap-vm1", "tap-vm3"} <= set(driver.ports("br-int"))
    driver.apply(del_ports=["tap-vm3"])  # writes work again on the new connection
    _next(events, "removed", "tap-vm3")


def test_apply_from_a_port_event_callback_is_refused_instead_of_deadlocking(ovs, watched):
    driver, _ = watched
    errors: queue.Queue[Exception] = queue.Queue()

    def writes_back(event: PortEvent) -> None:
        try:
            driver.apply(del_ports=[event.port.name])
        except DriverError as exc:
            errors.put(exc)

    driver.watch(writes_back)
    _add_vm_port(ovs, "tap-vm1", "port-1")
    assert "deadlock" in str(errors.get(timeout=WAIT))
    assert "tap-vm1" in driver.ports()


def test_a_port_moved_to_another_bridge_is_read_on_its_new_bridge(ovs, watched):
    """The same Port row taken from one bridge's ports and given to another's: no change of
    the Port row itself, only of the two Bridge rows (the driver keeps port values and
    re-reads only what changed; this is the change it must not miss)."""
    driver, events = watched
    driver.apply(add_bridges=[Bridge("br-two", "netdev")])
    _add_vm_port(ovs, "tap-vm1", "port-1")
    _next(events, "added", "tap-vm1")
    uuid = ovs.vsctl("get", "Port", "tap-vm1", "_uuid").strip()
    ovs.vsctl("remove", "Bridge", "br-int", "ports", uuid, "--",
              "add", "Bridge", "br-two", "ports", uuid)
    while _next(events, "updated", "tap-vm1").port.bridge != "br-two":
        pass  # an earlier update (the ofport arriving) may come first
    assert driver.ports("br-two")["tap-vm1"].bridge == "br-two"
    assert "tap-vm1" not in driver.ports("br-int")
    ovs.vsctl("remove", "Bridge", "br-two", "ports", uuid)
    _next(events, "removed", "tap-vm1")
    assert "tap-vm1" not in driver.ports()
