"""Links on the real kernel: veth pairs across namespaces, MAC/MTU/up, moves, deletes."""

from __future__ import annotations

import errno
import threading

import pytest

from dvr_agent.drivers.errors import DriverError, InvalidInput
from dvr_agent.drivers.netlink import Netlink
from dvr_agent.state import Link, LinkKind
from tests.functional import netlink_fixtures
from tests.functional.netlink_fixtures import ip

new_namespace = netlink_fixtures.new_namespace
netlink = netlink_fixtures.netlink


def test_veth_pair_spans_two_namespaces_with_mac_mtu_and_up(new_namespace):
    router, fip = new_namespace(), new_namespace()
    with Netlink(router) as r, Netlink(fip) as f:
        r.veth_add("rfp-1a2b3c4d-5", "fpr-1a2b3c4d-5", fip)
        r.link_set("rfp-1a2b3c4d-5", mac="FA-16-3E-AA-BB-01", mtu=1450, up=True)
        f.link_set("fpr-1a2b3c4d-5", mac="fa:16:3e:aa:bb:02", mtu=1450, up=True)

        here, there = r.links()["rfp-1a2b3c4d-5"], f.links()["fpr-1a2b3c4d-5"]
        assert (here.kind, here.mac, here.mtu, here.up) == ("veth", "fa:16:3e:aa:bb:01", 1450,
                                                            True)
        assert (there.kind, there.mac, there.mtu, there.up) == ("veth", "fa:16:3e:aa:bb:02",
                                                                1450, True)
        assert "fpr-1a2b3c4d-5" not in r.links() and "rfp-1a2b3c4d-5" not in f.links()
        # each end knows where the other one is
        assert here.peer_namespace_id is not None
        assert here.peer_namespace_id == r.namespace_id(fip)
        assert here.peer_index == there.index and there.peer_index == here.index
    assert "link/ether fa:16:3e:aa:bb:01" in ip("-n", router, "link", "show", "rfp-1a2b3c4d-5")
    assert "mtu 1450" in ip("-n", fip, "link", "show", "fpr-1a2b3c4d-5")


def test_many_veths_in_one_batch_each_end_in_its_namespace_up_with_mtu_and_mac(
        new_namespace):
    routers = [new_namespace() for _ in range(3)]
    ends = [(ns, Link(f"qr-bulk-{i}{j}", LinkKind.OVS_VETH, mac=f"fa:16:3e:00:0{i}:0{j}",
                      mtu=1450, peer=f"tap-bulk-{i}{j}"))
            for i, ns in enumerate(routers) for j in range(2)]
    with Netlink(None) as host:
        try:
            assert host.veths_add(ends) == {}
            for ns, link in ends:
                with Netlink(ns) as inside:
                    far = inside.links()[link.name]
                near = host.link(link.peer)
                # the far end cannot come up in the same message (veth_open: ENOTCONN)
                assert (far.kind, far.mac, far.mtu, far.up) == ("veth", link.mac, 1450, False)
                assert (near.kind, near.mtu, near.up) == ("veth", 1450, True)
                assert near.peer_namespace_id == host.namespace_id(ns)
            # again: the kernel refuses every one by name, and nothing changes
            before = {link.name: Netlink(ns).link(link.name) for ns, link in ends}
            refused = host.veths_add(ends)
            assert sorted(refused) == sorted(link.name for _ns, link in ends)
            assert {e.errno for e in refused.values()} == {errno.EEXIST}
            assert {link.name: Netlink(ns).link(link.name) for ns, link in ends} == before
        finally:
            for _ns, link in ends:
                host.link_del(link.peer)
    assert not any(host_link.startswith("tap-bulk-") for host_link in Netlink(None).links())


def test_applying_the_same_links_twice_changes_nothing(new_namespace):
    router, fip = new_namespace(), new_namespace()
    with Netlink(router) as r:
        def apply() -> None:
            r.veth_add("rfp-1", "fpr-1", fip)
            r.link_set("rfp-1", mac="fa:16:3e:00:00:01", mtu=1400, up=True)

        apply()
        before = r.links()
        apply()
        assert r.links() == before


def test_veth_with_its_peer_in_the_agent_namespace(netlink):
    netlink.veth_add("qr-1", "tap-1", None)
    try:
        with Netlink(None) as agent:
            host_end = agent.links()["tap-1"]
            assert host_end.kind == "veth"
            assert host_end.peer_namespace_id == agent.namespace_id(netlink.namespace)
        assert "qr-1" in netlink.links()
    finally:
        netlink.link_del("qr-1")  # takes the host end along
    with Netlink(None) as agent:
        assert "tap-1" not in agent.links()


def test_links_asked_for_by_name_are_those_a_dump_lists_and_absent_ones_are_left_out(
        netlink):
    for i in range(3):
        netlink.veth_add(f"qr-{i}", f"qg-{i}", netlink.namespace)
    netlink.link_set("qr-1", mac="fa:16:3e:00:00:01", mtu=1450, up=True)
    everything = netlink.links()
    asked = ["qr-0", "qr-1", "qg-2", "lo", "nothere-1"]
    assert netlink.links_named(asked) == {n: everything[n] for n in asked if n != "nothere-1"}
    assert netlink.links_named([]) == {}
    with pytest.raises(InvalidInput):  # a name the kernel could not hold: nothing is asked
        netlink.links_named(["qr-0", "a-name-far-too-long"])


def test_veth_in_one_namespace_when_peer_namespace_is_the_same(netlink):
    netlink.veth_add("qr-a", "qr-b", netlink.namespace)
    assert {"qr-a", "qr-b"} <= set(netlink.links())


def test_veth_whose_peer_name_is_taken_is_an_error(new_namespace):
    router, fip = new_namespace(), new_namespace()
    with Netlink(router) as r, Netlink(fip) as f:
        f.veth_add("fpr-1", "other-1", fip)
        with pytest.raises(DriverError, match="fpr-1") as caught:
            r.veth_add("rfp-1", "fpr-1", fip)
        assert caught.value.errno == errno.EEXIST
        assert "rfp-1" not in r.links()


def test_link_moves_to_another_namespace_and_back_idempotently(new_namespace):
    a, b = new_namespace(), new_namespace()
    with Netlink(a) as na, Netlink(b) as nb:
        na.veth_add("qg-1", "qg-peer", a)
        na.link_move("qg-1", b)
        na.link_move("qg-1", b)  # already there
        assert "qg-1" in nb.links() and "qg-1" not in na.links()
        nb.link_move("qg-1", a)
        assert "qg-1" in na.links()


def test_moving_a_device_that_is_nowhere_is_an_error(new_namespace):
    a, b = new_namespace(), new_namespace()
    with Netlink(a) as na, pytest.raises(DriverError) as caught:
        na.link_move("qg-none", b)
    assert caught.value.errno == errno.ENODEV


def test_link_set_writes_only_what_differs_and_reads_back(netlink):
    netlink.veth_add("qr-1", "qr-2", netlink.namespace)
    netlink.link_set("qr-1", up=True)
    assert netlink.links()["qr-1"].up
    netlink.link_set("qr-1", up=False)
    assert not netlink.links()["qr-1"].up
    netlink.link_set("qr-1", mtu=9000)
    netlink.link_set("qr-1", mtu=9000)
    assert netlink.links()["qr-1"].mtu == 9000


def test_link_set_with_the_device_as_just_read_writes_what_differs(netlink):
    """``current`` saves the read; what it says already is so is not written again."""
    netlink.veth_add("qr-1", "qr-2", netlink.namespace)
    read = netlink.links()
    netlink.link_set("qr-1", mtu=1400, up=True, current=read["qr-1"])
    assert (netlink.links()["qr-1"].mtu, netlink.links()["qr-1"].up) == (1400, True)
    # another device's entry is not taken for this one's: it is read instead
    netlink.link_set("qr-2", mtu=1400, current=read["qr-1"])
    assert netlink.links()["qr-2"].mtu == 1400


def test_deleting_an_absent_link_is_success(netlink):
    netlink.veth_add("qr-1", "qr-2", netlink.namespace)
    netlink.link_del("qr-1")
    netlink.link_del("qr-1")
    netlink.link_del("qr-2")  # went with its peer
    assert set(netlink.links()) == {"lo"}


def test_setting_a_missing_device_is_an_error_naming_it(netlink):
    with pytest.raises(DriverError, match="qr-missing") as caught:
        netlink.link_set("qr-missing", up=True)
    assert caught.value.errno == errno.ENODEV


@pytest.mark.parametrize("call", [
    lambda nl: nl.veth_add("qr-1234567890abc", "qr-2", nl.namespace),  # 16 characters
    lambda nl: nl.veth_add("qr-1", "qr-1234567890abc", nl.namespace),
    lambda nl: nl.veth_add("qr/1", "qr-2", nl.namespace),
    lambda nl: nl.link_set("qr-1", mac="fa:16:3e:00:00"),
    lambda nl: nl.link_set("qr-1", mac="zz:16:3e:00:00:01"),
    lambda nl: nl.link_set("qr-1", mac="fa:16-3e:00:00:01"),
    lambda nl: nl.link_set("qr-1", mac="01:00:5e:00:00:01"),  # multicast
    lambda nl: nl.link_set("qr-1", mtu=10),
    lambda nl: nl.link_set("qr-1", up=True, mtu=1500, mac="nope"),  # nothing half-applied
], ids=["16-char-name", "16-char-peer", "slash", "short-mac", "hex", "mixed-separators",
        "multicast", "tiny-mtu", "bad-mac-among-good"])
def test_bad_input_is_refused_before_anything_changes(netlink, call):
    netlink.veth_add("qr-1", "qr-2", netlink.namespace)
    before = netlink.links()
    with pytest.raises(InvalidInput):
        call(netlink)
    assert netlink.links() == before


def test_a_netlink_works_from_several_threads(netlink):
    netlink.veth_add("qr-1", "qr-2", netlink.namespace)
    seen: list[set[str]] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            seen.append(set(netlink.links()))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=read) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    assert seen == [{"lo", "qr-1", "qr-2"}] * 4


def test_opening_a_missing_namespace_is_a_driver_error():
    with pytest.raises(DriverError) as caught:
        Netlink("qrouter-00000000-0000-0000-0000-000000000000")
    assert caught.value.errno == errno.ENOENT
