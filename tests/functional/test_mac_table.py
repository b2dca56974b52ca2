"""Forgetting a learned MAC on a real ovs-vswitchd (userspace datapath): a VM that moved.

br-int (NORMAL, VLAN 5) has three ports: the sender's, the VM's old place and the VM's
new place. br-int learned the VM's MAC at its old place; the VM, now at its new port, has
not sent a frame yet (IPv6 is off in these namespaces, so nothing is sent on its own).
Frames to it go to the old place, until the entry is forgotten: then they flood, reach
the VM, and its answer teaches br-int where it is.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from dvr_agent.drivers.errors import DriverError
from dvr_agent.drivers.mac_table import MacTable
from dvr_agent.drivers.netlink import Netlink
from dvr_agent.drivers.sysctl import sysctls_set
from dvr_agent.state import Address, Neighbour
from tests.fixtures.ovs import add_test_bridge, ovs  # noqa: F401
from tests.functional import netlink_fixtures

new_namespace = netlink_fixtures.new_namespace

VLAN = 5
VM_MAC = "fa:16:3e:00:00:33"
SENDER_MAC = "fa:16:3e:00:00:11"
VM_IP, SENDER_IP = "10.9.0.3", "10.9.0.1"


def _plug(switch, namespace: str, tap: str, mac: str, ip: str, peer: tuple[str, str]) -> None:
    """eth0 in ``namespace`` (IPv6 off: no frame of its own), its peer ``tap`` on br-int."""
    sysctls_set(namespace, {"net.ipv6.conf.all.disable_ipv6": "1",
                            "net.ipv6.conf.default.disable_ipv6": "1"})
    with Netlink(namespace) as nl:
        nl.veth_add("eth0", tap, None)  # the tap goes with the namespace
        nl.link_set("eth0", mac=mac, up=True)
        nl.addr_add(Address("eth0", f"{ip}/24"))
        nl.neigh_replace([Neighbour("eth0", peer[0], peer[1])])  # no ARP broadcast
    with Netlink(None) as root:
        root.link_set(tap, up=True)
    switch.vsctl("add-port", "br-int", tap, f"tag={VLAN}")


def _ping(namespace: str, ip: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", namespace, "ping", "-c", "2", "-W", "0.5",
                           "-i", "0.2", ip], capture_output=True).returncode == 0


def _learned_at(switch, mac: str) -> str | None:
    """The port name br-int's MAC table holds ``mac`` at on VLAN 5."""
    for line in switch.appctl("fdb/show", "br-int").splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] == str(VLAN) and fields[2] == mac:
            ofport = fields[0]
            return switch.vsctl("--bare", "--columns=name", "find", "Interface",
                             f"ofport={ofport}").strip()
    return None


def test_a_moved_vms_mac_is_forgotten_and_frames_find_it_at_its_new_port(ovs, new_namespace):  # noqa: F811
    add_test_bridge(ovs, "br-int")
    ovs.ofctl("add-flow", "br-int", "actions=NORMAL")
    sender, old_place, vm = new_namespace(), new_namespace(), new_namespace()
    _plug(ovs, sender, "tapmt-sender", SENDER_MAC, SENDER_IP, (VM_IP, VM_MAC))
    _plug(ovs, old_place, "tapmt-old", VM_MAC, VM_IP, (SENDER_IP, SENDER_MAC))
    assert _ping(old_place, SENDER_IP)  # the VM talked from its old place: br-int learned
    with Netlink(old_place) as nl:
        nl.link_set("eth0", up=False)  # and left it
    _plug(ovs, vm, "tapmt-vm", VM_MAC, VM_IP, (SENDER_IP, SENDER_MAC))
    assert _learned_at(ovs, VM_MAC) == "tapmt-old"
    assert not _ping(sender, VM_IP), "frames to the VM should still go to its old place"

    table = MacTable(ovs.rundir)
    assert table.forget("br-int", [("tapmt-vm", VLAN, VM_MAC)]) == [("tapmt-vm", VLAN, VM_MAC)]
    assert _learned_at(ovs, VM_MAC) is None  # forgotten, not pinned: learning decides

    assert _ping(sender, VM_IP)
    assert _learned_at(ovs, VM_MAC) == "tapmt-vm"
    assert table.forget("br-int", [("tapmt-no-such-port", VLAN, VM_MAC)]) == []
    assert _learned_at(ovs, VM_MAC) == "tapmt-vm"  # a refused entry changed nothing


def test_without_ovs_vswitchd_the_error_names_what_is_missing(tmp_path):
    table = MacTable(str(tmp_path))
    assert table.forget("br-int", []) == []  # nothing to forget: nothing asked
    with pytest.raises(DriverError, match=re.escape(f"{tmp_path}/ovs-vswitchd.pid")):
        table.forget("br-int", [("tapmt-vm", VLAN, VM_MAC)])
    (tmp_path / "ovs-vswitchd.pid").write_text("4194999\n")  # no such process, no socket
    with pytest.raises(DriverError, match=r"cannot reach ovs-vswitchd at .*\.4194999\.ctl"):
        table.forget("br-int", [("tapmt-vm", VLAN, VM_MAC)])
