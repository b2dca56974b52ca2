"""The OVSDB driver against a private, real Open vSwitch (userspace datapath)."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from dvr_agent.drivers.errors import DriverError, InvalidInput
from dvr_agent.drivers.ovsdb import Ovsdb
from dvr_agent.state import Bridge, OvsPort, VifTag

BR_INT = Bridge("br-int", "netdev", "secure")
BR_TUN = Bridge("br-tun", "netdev", "secure")
PATCH_TUN = OvsPort("br-int", "patch-tun", "patch", options=(("peer", "patch-int"),),
                    ofport_request=1)
PATCH_INT = OvsPort("br-tun", "patch-int", "patch", options=(("peer", "patch-tun"),),
                    ofport_request=1)
VXLAN = OvsPort("br-tun", "vxlan-c000020c", "vxlan", ofport_request=12, options=(
    ("dst_port", "4789"), ("key", "flow"), ("local_ip", "192.0.2.11"),
    ("remote_ip", "192.0.2.12")))
QR = OvsPort("br-int", "qr-e87505b3-d4", "internal", tag=3,
             external_ids=(("attached-mac", "fa:16:3e:ec:f3:dd"),
                           ("dvr-agent-key", "router:e87505b3-d455-49fc-bf31-5a2c51203085"),
                           ("iface-id", "e87505b3-d455-49fc-bf31-5a2c51203085"),
                           ("iface-status", "active")),
             other_config=(("net_uuid", "0bd5b983-a8c1-4a6c-9e24-7e1f0f0f0f0f"),))
EVERYTHING = dict(add_bridges=[BR_INT, BR_TUN], add_ports=[PATCH_TUN, PATCH_INT, VXLAN, QR])


@pytest.fixture
def ovsdb(ovs):
    with Ovsdb(ovs.db, timeout=60) as driver:
        yield driver


def test_bridges_patch_pair_vxlan_and_tagged_port_are_made_as_asked(ovs, ovsdb):
    ovsdb.apply(**EVERYTHING)

    assert ovsdb.bridges() == {"br-int": BR_INT, "br-tun": BR_TUN}
    for br in ("br-int", "br-tun"):
        assert ovs.vsctl("get", "Bridge", br, "datapath_type", "fail_mode").split() == [
            "netdev", "secure"]
        assert "OpenFlow14" in ovs.vsctl("get", "Bridge", br, "protocols")
    ports = ovsdb.ports()
    assert (ports["patch-tun"].ofport, ports["patch-int"].ofport, ports["vxlan-c000020c"].ofport
            ) == (1, 1, 12)  # ofport_request honoured
    assert ovs.vsctl("get", "Interface", "patch-int", "options:peer").strip() == "patch-tun"
    assert dict(ports["vxlan-c000020c"].options) == dict(VXLAN.options)
    assert ovs.vsctl("get", "Interface", "vxlan-c000020c", "options:key").strip() == "flow"
    qr = ports["qr-e87505b3-d4"]
    assert (qr.bridge, qr.type, qr.tag) == ("br-int", "internal", 3)
    assert dict(qr.external_ids) == dict(QR.external_ids)
    assert dict(qr.other_config) == dict(QR.other_config)
    assert ovs.vsctl("get", "Interface", QR.name, "external_ids:iface-id").strip() == (
        '"e87505b3-d455-49fc-bf31-5a2c51203085"')
    assert ovsdb.ofport(QR.name) == qr.ofport == int(
        ovs.vsctl("get", "Interface", QR.name, "ofport"))
    assert ovs.ofctl("show", "br-int").count("(qr-e87505b3-d4)") == 1  # vswitchd has it
    # a pass's lookup by name sees the same rows, and leaves out what does not exist
    assert ovsdb.ports_named(["patch-tun", QR.name, "tap-nothere"]) == {
        "patch-tun": ports["patch-tun"], QR.name: qr}


def test_creating_everything_twice_changes_nothing(ovs, ovsdb):
    ovsdb.apply(**EVERYTHING)
    replica, shown = (ovsdb.bridges(), ovsdb.ports()), ovs.vsctl("show")
    next_cfg = ovs.vsctl("get", "Open_vSwitch", ".", "next_cfg")

    ovsdb.apply(**EVERYTHING)

    assert (ovsdb.bridges(), ovsdb.ports()) == replica
    assert ovs.vsctl("show") == shown
    assert ovs.vsctl("get", "Open_vSwitch", ".", "next_cfg") == next_cfg  # no transaction


def test_a_thousand_ports_go_in_one_call(ovs, ovsdb):
    ovsdb.apply(add_bridges=[BR_INT])
    ports = [OvsPort("br-int", f"qr-{i:011d}", "internal", tag=1 + i % 4094,
                     external_ids=(("dvr-agent-key", "test"),)) for i in range(1000)]
    next_cfg = int(ovs.vsctl("get", "Open_vSwitch", ".", "next_cfg"))

    began = time.monotonic()
    ovsdb.apply(add_ports=ports)
    added = time.monotonic() - began

    assert int(ovs.vsctl("get", "Open_vSwitch", ".", "next_cfg")) == next_cfg + 1  # one txn
    found = ovsdb.ports("br-int")
    assert all(found[p.name].ofport and found[p.name].tag == p.tag for p in ports)
    began = time.monotonic()
    ovsdb.apply(del_ports=[p.name for p in ports])
    deleted = time.monotonic() - began
    assert set(ovsdb.ports("br-int")) == {"br-int"}
    print(f"\n1,000 internal ports: add {added:.2f} s, delete {deleted:.2f} s (one call each)")


def test_update_changes_a_tag_in_place_and_keeps_the_ofport(ovs, ovsdb):
    ovsdb.apply(**EVERYTHING)
    before = ovsdb.ports()[QR.name]
    uuid = ovs.vsctl("get", "Port", QR.name, "_uuid")

    retagged = OvsPort(**{**_fields(QR), "tag": 7,
                          "other_config": (("net_uuid", "another"),)})
    ovsdb.apply(update_ports=[retagged])

    after = ovsdb.ports()[QR.name]
    assert after.tag == 7 and after.other_config == {"net_uuid": "another"}
    assert after.ofport == before.ofport
    assert ovs.vsctl("get", "Port", QR.name, "_uuid") == uuid  # same row: never re-created
    assert ovs.vsctl("get", "Port", QR.name, "tag").strip() == "7"


def test_vif_tag_tags_a_port_somebody_else_made(ovs, ovsdb):
    ovsdb.apply(add_bridges=[BR_INT])
    ovs.vsctl("add-port", "br-int", "tap-vm1", "--", "set", "Interface", "tap-vm1",
              "type=internal", "external_ids:iface-id=vm1",
              "--", "set", "Port", "tap-vm1", "other_config:foreign=kept")

    ovsdb.apply(vif_tags=[VifTag("tap-vm1", 4, "net-1")])

    port = ovsdb.ports()["tap-vm1"]
    assert port.tag == 4
    assert port.other_config == {"net_uuid": "net-1", "foreign": "kept"}
    assert port.external_ids == {"iface-id": "vm1"}


def test_an_unsettled_vif_tag_returns_with_the_vifs_ofport_and_settles_later(ovs, ovsdb):
    ovsdb.apply(add_bridges=[BR_INT])
    pool = ThreadPoolExecutor(1)
    os.kill(ovs.vswitchd_pid, signal.SIGSTOP)  # busy: it has not taken in what comes next
    try:
        # as Nova plugs: committed, ovs-vswitchd not waited for; a tap whose device is
        # missing gets ofport -1, its plugger's problem and no reason to fail the tag
        for name, kind in (("tap-vm1", "internal"), ("tap-missing", "system")):
            ovs.vsctl("--no-wait", "add-port", "br-int", name, "--", "set", "Interface",
                      name, f"type={kind}", f"external_ids:iface-id={name}")
        tagging = pool.submit(
            ovsdb.apply, vif_tags=[VifTag("tap-vm1", 4, "net-1"),
                                   VifTag("tap-missing", 5, "net-1")], settle=False)
        time.sleep(0.5)
        assert not tagging.done(), "it waits for the VIFs' ofports"
    finally:
        os.kill(ovs.vswitchd_pid, signal.SIGCONT)
        pool.shutdown(wait=True)
    tagging.result()
    assert ovsdb.ofport("tap-vm1") > 0, "the VIF's flows can be compiled now"
    ovsdb.settle()

    assert int(ovs.vsctl("get", "Open_vSwitch", ".", "cur_cfg")) >= int(
        ovs.vsctl("get", "Open_vSwitch", ".", "next_cfg")), "ovs-vswitchd applied it all"
    assert ovs.vsctl("get", "Port", "tap-vm1", "tag").strip() == "4"
    assert ovs.vsctl("get", "Port", "tap-missing", "tag").strip() == "5"
    ovsdb.settle()  # nothing left to wait for: returns at once


def test_vif_tag_never_creates_a_port_and_a_failed_change_changes_nothing(ovs, ovsdb):
    ovsdb.apply(add_bridges=[BR_INT])
    shown = ovs.vsctl("show")
    with pytest.raises(DriverError, match="tap-gone"):
        ovsdb.apply(add_ports=[QR], vif_tags=[VifTag("tap-gone", 4, "net-1")])
    assert ovs.vsctl("show") == shown  # QR was not added either: one transaction


@pytest.mark.parametrize("port", [
    OvsPort("br-int", "qr-1234567890abc", "internal"),  # 16 characters
    OvsPort("br-int", "qr-1", "internal", tag=5000),
    OvsPort("br-int", "qr-1", "internal", options=(("peer", 1),)),
])
def test_bad_input_is_refused_and_changes_nothing(ovs, ovsdb, port):
    ovsdb.apply(add_bridges=[BR_INT])
    shown = ovs.vsctl("show")
    with pytest.raises(InvalidInput):
        ovsdb.apply(add_bridges=[BR_TUN], add_ports=[port])
    assert ovs.vsctl("show") == shown


def test_a_port_on_a_missing_bridge_or_on_another_bridge_is_an_error(ovsdb):
    with pytest.raises(DriverError, match="bridge br-none does not exist"):
        ovsdb.apply(add_ports=[OvsPort("br-none", "p1", "internal")])
    ovsdb.apply(**EVERYTHING)
    with pytest.raises(DriverError, match="is on bridge br-int, not br-tun"):
        ovsdb.apply(update_ports=[OvsPort(**{**_fields(QR), "bridge": "br-tun"})])


def test_an_interface_vswitchd_cannot_open_raises_naming_it(ovsdb):
    ovsdb.apply(add_bridges=[BR_INT])
    with pytest.raises(DriverError, match=r"interface tap-nodevice: .*ofport -1"):
        ovsdb.apply(add_ports=[OvsPort("br-int", "tap-nodevice")])  # no such device
    ovsdb.apply(del_ports=["tap-nodevice"])
    assert "tap-nodevice" not in ovsdb.ports()


def test_deleting_a_bridge_takes_its_ports_and_deleting_twice_is_fine(ovs, ovsdb):
    ovsdb.apply(**EVERYTHING)
    ovsdb.apply(del_bridges=["br-tun"], del_ports=["patch-int", "qr-e87505b3-d4"])
    ovsdb.apply(del_bridges=["br-tun"], del_ports=["patch-int", "qr-e87505b3-d4"])
    assert set(ovsdb.bridges()) == {"br-int"}
    assert set(ovsdb.ports()) == {"br-int", "patch-tun"}
    assert ovs.vsctl("list-br").split() == ["br-int"]


def _fields(port: OvsPort) -> dict:
    return {name: getattr(port, name) for name in port.__slots__}


def test_a_write_right_after_an_ovsdb_restart_is_retried_on_the_new_connection(ovs, ovsdb):
    ovsdb.apply(add_bridges=[BR_INT])
    ovs.restart_ovsdb()  # the driver's connection is dead and it may not know yet
    ovsdb.apply(add_ports=[QR])
    assert ovs.vsctl("get", "Port", QR.name, "tag").strip() == "3"
    assert ovsdb.ofport(QR.name) == int(ovs.vsctl("get", "Interface", QR.name, "ofport"))
