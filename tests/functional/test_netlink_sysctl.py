"""Sysctls inside a namespace on the real kernel: set there, not in the session's namespace."""

from __future__ import annotations

import errno

import pytest

from dvr_agent.drivers.errors import DriverError, InvalidInput
from dvr_agent.drivers.sysctl import sysctl_get, sysctl_set, sysctls_get, sysctls_set
from tests.functional import netlink_fixtures
from tests.functional.netlink_fixtures import ip

new_namespace = netlink_fixtures.new_namespace
netlink = netlink_fixtures.netlink

FORWARD = "net.ipv4.ip_forward"


def test_sysctl_set_in_a_namespace_is_read_there_and_differs_from_the_session(netlink):
    ns = netlink.namespace
    session_value = sysctl_get(None, FORWARD)
    wanted = "0" if session_value == "1" else "1"
    assert sysctl_set(ns, FORWARD, wanted) is True
    assert sysctl_get(ns, FORWARD) == wanted
    assert sysctl_get(None, FORWARD) == session_value
    assert ip("netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ip_forward").strip() == wanted


def test_setting_the_same_sysctls_twice_changes_nothing_the_second_time(netlink):
    netlink.veth_add("qr-1a2b3c4d-5e", "qr-peer", netlink.namespace)
    values = {FORWARD: "1",
              "net.ipv4.conf.qr-1a2b3c4d-5e.send_redirects": "0",
              "net.ipv4.conf.all.send_redirects": "0",
              "net.ipv4.ip_local_port_range": "20000\t30000"}
    assert sysctls_set(netlink.namespace, values) >= 1
    assert sysctls_set(netlink.namespace, values) == 0
    assert sysctls_get(netlink.namespace, values) == {
        FORWARD: "1", "net.ipv4.conf.qr-1a2b3c4d-5e.send_redirects": "0",
        "net.ipv4.conf.all.send_redirects": "0", "net.ipv4.ip_local_port_range": "20000 30000"}
    assert sysctl_set(netlink.namespace, FORWARD, "1") is False


def test_a_device_name_with_a_dot_maps_to_its_directory(netlink):
    netlink.veth_add("qg-1.100", "qg-peer", netlink.namespace)
    path = "/proc/sys/net/ipv4/conf/qg-1.100/rp_filter"
    # as sysctl(8) writes it, and with the dots as they are
    assert sysctl_set(netlink.namespace, "net.ipv4.conf.qg-1/100.rp_filter", "2") is True
    assert sysctl_get(netlink.namespace, "net.ipv4.conf.qg-1.100.rp_filter") == "2"
    assert ip("netns", "exec", netlink.namespace, "cat", path).strip() == "2"


@pytest.mark.parametrize("key", [
    "kernel.hostname",  # not per namespace: it would change the whole host
    "net.ipv4.conf.qr-1234567890abc.rp_filter",  # 16-character device
    "net..ip_forward",
    "net.ipv4.conf.../rp_filter",
])
def test_bad_key_in_a_batch_is_refused_and_nothing_changes(netlink, key):
    before = sysctl_get(netlink.namespace, FORWARD)
    flipped = "0" if before == "1" else "1"
    with pytest.raises(InvalidInput):
        sysctls_set(netlink.namespace, {FORWARD: flipped, key: "1"})
    assert sysctl_get(netlink.namespace, FORWARD) == before


def test_a_key_of_a_missing_device_is_a_driver_error(netlink):
    with pytest.raises(DriverError, match="qr-gone") as caught:
        sysctl_get(netlink.namespace, "net.ipv4.conf.qr-gone.rp_filter")
    assert caught.value.errno == errno.ENOENT


def test_a_missing_namespace_is_a_driver_error():
    with pytest.raises(DriverError) as caught:
        sysctl_get("qrouter-00000000-0000-0000-0000-000000000000", FORWARD)
    assert caught.value.errno == errno.ENOENT
