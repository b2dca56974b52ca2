"""The drivers keep working once the agent holds more than 1024 file descriptors.

At a thousand routers the agent holds a netlink socket or more per namespace, so every
socket it opens from then on is above descriptor 1023, the most select() can watch: the
netlink batch socket waited with select() (ValueError, a failed pass), and libnftables
writes with it (glibc aborts the whole process). Found by benchmarks/ (issue 9).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from dvr_agent.drivers import nftables
from dvr_agent.drivers.netlink import Netlink
from dvr_agent.state import NatRules, Neighbour
from tests.functional import netlink_fixtures

new_namespace = netlink_fixtures.new_namespace
FD_SETSIZE = 1024
FIP = NatRules(prerouting=('iifname "rfp-e87505b3-d" ip daddr 203.0.113.152 dnat to 10.0.0.5',))


@pytest.fixture
def descriptors_above_fd_setsize() -> Iterator[None]:
    """Hold enough descriptors that the next one opened is above FD_SETSIZE."""
    held = [os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC) for _ in range(FD_SETSIZE + 16)]
    try:
        yield
    finally:
        for fd in held:
            with contextlib.suppress(OSError):
                os.close(fd)


def test_netlink_reads_and_batches_work_above_descriptor_1024(new_namespace,
                                                              descriptors_above_fd_setsize):
    namespace = new_namespace()
    with Netlink(namespace) as nl:
        nl.veth_add("qr-a", "qr-b", namespace)
        nl.link_set("qr-a", up=True)
        entry = Neighbour("qr-a", "10.0.0.5", "fa:16:3e:00:00:05")
        assert nl.neigh_replace([entry]) == 1
        assert entry in nl.neighbours()
        assert {"qr-a", "qr-b"} <= set(nl.links())
        assert nl.link("qr-a").up


def test_nat_replace_works_above_descriptor_1024(new_namespace, descriptors_above_fd_setsize):
    namespace = new_namespace()
    nftables.replace(namespace, FIP)
    assert nftables.read(namespace) == FIP
    nftables.replace(namespace, NatRules())
    assert nftables.read(namespace) is None
