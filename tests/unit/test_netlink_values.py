"""Checking driver input: the error names the bad value; what passes comes back canonical."""

from __future__ import annotations

import pytest

from dvr_agent.drivers import netlink_values as check
from dvr_agent.drivers.errors import InvalidInput
from dvr_agent.drivers.sysctl import sysctl_path
from dvr_agent.state import Address, Neighbour, Route, Rule


@pytest.mark.parametrize("mac", ["FA:16:3E:0A:0B:0C", "fa-16-3e-0a-0b-0c", "Fa:16:3e:0A:0b:0c"])
def test_mac_in_any_case_and_separator_becomes_lower_case_colons(mac):
    assert check.mac(mac) == "fa:16:3e:0a:0b:0c"


@pytest.mark.parametrize("mac", ["fa:16:3e:0a:0b", "fa:16:3e:0a:0b:0c:0d", "fa:16-3e:0a:0b:0c",
                                 "fa163e0a0b0c", "gg:16:3e:0a:0b:0c", "", None, 42])
def test_malformed_mac_is_refused_naming_it(mac):
    with pytest.raises(InvalidInput, match="MAC"):
        check.mac(mac)


def test_multicast_mac_is_refused_for_a_device():
    with pytest.raises(InvalidInput, match="multicast"):
        check.unicast_mac("01:00:5e:00:00:01")


@pytest.mark.parametrize("name", ["qr-1234567890abc", "", "qr/1", "qr 1", "qr:1", ".", 7])
def test_bad_device_names_are_refused(name):
    with pytest.raises(InvalidInput, match="device name"):
        check.device(name)


def test_fifteen_characters_is_the_longest_device_name():
    assert check.device("qr-1234567890ab") == "qr-1234567890ab"


@pytest.mark.parametrize(("value", "canonical"), [
    ("10.0.0.5", "10.0.0.5"),
    ("2001:DB8:0:0::5", "2001:db8::5"),
    ("::ffff:1.2.3.4", "::ffff:102:304"),
])
def test_ip_text_is_what_ipaddress_prints(value, canonical):
    assert check.ip_text(value) == canonical


@pytest.mark.parametrize("value", ["10.0.0.256", "010.0.0.5", "10.0.0", "10.0.0.5/32", "", None])
def test_malformed_ip_is_refused(value):
    with pytest.raises(InvalidInput):
        check.ip_text(value)


def test_values_come_back_canonical():
    assert check.address(Address("qr-1", "2001:DB8::1/64")) == Address("qr-1", "2001:db8::1/64")
    assert check.route(Route("2001:DB8:1::/64", 70000, "2001:DB8::2", "qr-1")) == \
        Route("2001:db8:1::/64", 70000, "2001:db8::2", "qr-1")
    assert check.rule(Rule(100, 1000, "10.0.0.5/32")) == Rule(100, 1000, "10.0.0.5/32")
    assert check.neighbour(Neighbour("qr-1", "10.0.0.5", "FA-16-3E-00-00-05")) == \
        Neighbour("qr-1", "10.0.0.5", "fa:16:3e:00:00:05")


@pytest.mark.parametrize("table", [0, 255, 2**32, -1, True, "1000"])
def test_tables_outside_ours_are_refused(table):
    with pytest.raises(InvalidInput, match="table"):
        check.table(table)


@pytest.mark.parametrize("table", [1, 253, 254, 256, 2**32 - 1])
def test_tables_we_may_use(table):
    assert check.table(table) == table


@pytest.mark.parametrize("priority", [0, 2**32, False])
def test_rule_priorities_outside_ours_are_refused(priority):
    with pytest.raises(InvalidInput, match="priority"):
        check.priority(priority)


@pytest.mark.parametrize("route", [
    Route("10.0.0.1/24", 1000, "10.0.0.254", "qr-1"),  # host bits: not a network
    Route("10.0.0.0", 1000, "10.0.0.254", "qr-1"),  # no prefix length
    Route("10.0.0.0/24", 1000, "10.0.0.254"),  # no device
    Route("10.0.0.0/24", 1000, "2001:db8::1", "qr-1"),  # gateway of the other family
])
def test_routes_that_cannot_be_written_as_given_are_refused_naming_them(route):
    with pytest.raises(InvalidInput) as caught:
        check.route(route)
    assert caught.value.obj == route


def test_an_address_needs_its_prefix_length():
    with pytest.raises(InvalidInput, match="prefix"):
        check.address(Address("qr-1", "10.0.0.5"))


@pytest.mark.parametrize(("key", "path"), [
    ("net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward"),
    ("net.ipv4.conf.qr-1a2b3c4d-5e.send_redirects",
     "/proc/sys/net/ipv4/conf/qr-1a2b3c4d-5e/send_redirects"),
    ("net.ipv4.conf.eth0/100.rp_filter", "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"),
    ("net.ipv4.conf.eth0.100.rp_filter", "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"),
    ("net.ipv6.neigh.qg-1.retrans_time_ms", "/proc/sys/net/ipv6/neigh/qg-1/retrans_time_ms"),
    ("net.ipv4.conf.all.arp_ignore", "/proc/sys/net/ipv4/conf/all/arp_ignore"),
])
def test_sysctl_keys_map_to_their_proc_files(key, path):
    assert sysctl_path(key) == path


@pytest.mark.parametrize("key", ["kernel.hostname", "vm.swappiness", "net..x", "net.ipv4.",
                                 "net.ipv4.conf.qr-1234567890abc.rp_filter",
                                 "net.ipv4.conf.../rp_filter"])
def test_sysctl_keys_outside_net_or_malformed_are_refused(key):
    with pytest.raises(InvalidInput):
        sysctl_path(key)


def test_a_sysctl_key_never_leaves_its_directory():
    """'/' in a key is a '.' in a name (sysctl(8)), so no key can climb out of /proc/sys/net."""
    path = sysctl_path("net.ipv4.conf.a/../../x.y")
    components = path.removeprefix("/proc/sys/net/ipv4/conf/").split("/")
    assert path.startswith("/proc/sys/net/ipv4/conf/")
    assert len(components) == 2 and components[1] == "y"  # one device name, one leaf
    assert ".." not in components


@pytest.mark.parametrize(("value", "canonical"), [
    ("10.0.0.0/24", "10.0.0.0/24"),
    ("0.0.0.0/0", "0.0.0.0/0"),
    ("203.0.113.7/32", "203.0.113.7/32"),
    ("10.0.0.0/024", "10.0.0.0/24"),
    ("2001:DB8:1::/64", "2001:db8:1::/64"),
])
def test_network_text_is_what_ipaddress_prints(value, canonical):
    assert check.network_text(value) == canonical


@pytest.mark.parametrize("value", ["10.0.0.1/24", "10.0.0.0/33", "10.0.0.0/",
                                   "10.0.0.0", "010.0.0.0/8", "10.0.0.0/+8", "2001:db8::1/64"])
def test_network_text_refuses_what_is_not_a_network(value):
    with pytest.raises(InvalidInput):
        check.network_text(value)
