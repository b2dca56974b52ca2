"""The real drivers, assembled into what the reconciler needs (reconcile.drivers.Drivers).

One netlink socket per namespace is kept open for the life of the namespace (opening
one costs ~1 ms; a pass over a thousand routers must not pay it each time), and closed
before the namespace is deleted: an open socket would keep a deleted namespace, and
every device in it, alive.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from dvr_agent.drivers import ethtool, nftables, sysctl
from dvr_agent.drivers.garp import GarpSender
from dvr_agent.drivers.namespaces import Namespaces
from dvr_agent.drivers.netlink import Netlink
from dvr_agent.drivers.openflow import OpenFlow
from dvr_agent.drivers.ovsdb import Ovsdb
from dvr_agent.reconcile.drivers import Drivers
from dvr_agent.state import NatRules


class NetlinkCache:
    """namespace -> its Netlink handle, opened on first use."""

    def __init__(self) -> None:
        self._handles: dict[str | None, Netlink] = {}
        self._lock = threading.Lock()

    def get(self, namespace: str | None) -> Netlink:
        with self._lock:
            handle = self._handles.get(namespace)
            if handle is None:
                handle = self._handles[namespace] = Netlink(namespace)
            return handle

    def forget(self, namespace: str) -> None:
        with self._lock:
            handle = self._handles.pop(namespace, None)
        if handle is not None:
            handle.close()

    def close(self) -> None:
        with self._lock:
            handles, self._handles = list(self._handles.values()), {}
        for handle in handles:
            handle.close()


class _Sysctl:
    @staticmethod
    def get(namespace: str | None, keys: Iterable[str]) -> dict[str, str]:
        return sysctl.sysctls_get(namespace, keys)

    @staticmethod
    def set(namespace: str | None, values: Mapping[str, str]) -> int:
        return sysctl.sysctls_set(namespace, values)


class _Nat:
    @staticmethod
    def read(namespace: str) -> NatRules | None:
        return nftables.read(namespace)

    @staticmethod
    def replace(namespace: str, rules: NatRules) -> None:
        nftables.replace(namespace, rules)


def build_drivers(ovsdb: Ovsdb, ovs_rundir: str, netlink: NetlinkCache,
                  announcer: GarpSender | None = None) -> Drivers:
    return Drivers(
        namespaces=Namespaces(),
        netlink=netlink.get,
        forget_netlink=netlink.forget,
        sysctl=_Sysctl(),
        tx_checksum_off=ethtool.tx_checksum_off,
        ovsdb=ovsdb,
        openflow=OpenFlow(ovs_rundir),
        nat=_Nat(),
        announcer=announcer,
    )
