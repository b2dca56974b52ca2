"""tx checksum offload on the real kernel: off on a veth end in a namespace, and read back."""

from __future__ import annotations

import errno

import pytest

from dvr_agent.drivers.errors import DriverError
from dvr_agent.drivers.ethtool import tx_checksum_enabled, tx_checksum_off
from tests.functional import netlink_fixtures
from tests.functional.netlink_fixtures import ip

new_namespace = netlink_fixtures.new_namespace
netlink = netlink_fixtures.netlink


def _ethtool_says(namespace: str, device: str) -> str:
    features = ip("netns", "exec", namespace, "ethtool", "-k", device)
    return next(line for line in features.splitlines() if line.startswith("tx-checksumming:"))


def test_tx_checksum_is_turned_off_on_a_veth_end_in_a_namespace(netlink):
    netlink.veth_add("qr-1", "tap-1", netlink.namespace)
    assert tx_checksum_enabled(netlink.namespace, "qr-1") is True  # veth default
    assert tx_checksum_off(netlink.namespace, "qr-1") is True
    assert tx_checksum_enabled(netlink.namespace, "qr-1") is False
    assert _ethtool_says(netlink.namespace, "qr-1") == "tx-checksumming: off"
    assert _ethtool_says(netlink.namespace, "tap-1") == "tx-checksumming: on"  # only that end


def test_turning_tx_checksum_off_twice_changes_nothing_the_second_time(netlink):
    netlink.veth_add("qr-1", "tap-1", netlink.namespace)
    tx_checksum_off(netlink.namespace, "qr-1")
    before = ip("netns", "exec", netlink.namespace, "ethtool", "-k", "qr-1")
    assert tx_checksum_off(netlink.namespace, "qr-1") is False
    assert ip("netns", "exec", netlink.namespace, "ethtool", "-k", "qr-1") == before


def test_a_missing_device_is_a_driver_error(netlink):
    with pytest.raises(DriverError, match="qr-gone") as caught:
        tx_checksum_off(netlink.namespace, "qr-gone")
    assert caught.value.errno == errno.ENODEV
