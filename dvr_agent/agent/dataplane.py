"""The real drivers, assembled into what the reconciler needs (reconcile.drivers.Drivers).

One netlink socket per namespace is kept open for the life of the namespace (opening
one costs ~1 ms; a pass over a thousand routers must not pay it each time), and closed
before the namespace is deleted: an open socket would keep a deleted namespace, and
every device in it, alive.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping

from dvr_agent.drivers import ethtool, nftables, sysctl
from dvr_agent.drivers.namespaces import Namespaces
from dvr_agent.drivers.netlink import Netlink
from dvr_agent.drivers.netns_thread import netns_path
from dvr_agent.drivers.openflow import OpenFlow
from dvr_agent.drivers.ovsdb import Ovsdb
from dvr_agent.reconcile.drivers import Announcer, Drivers
from dvr_agent.state import NatRules


class NetlinkCache:
    """namespace -> its Netlink handle, opened on first use.

    A handle is bound to the namespace that had the name when it was opened. If someone
    deleted the namespace by hand and it was created again, the name now means another
    namespace: the handle is reopened (compared by inode), or every change would go to
    the old, invisible one.
    """

    def __init__(self) -> None:
        self._handles: dict[str | None, tuple[Netlink, int | None]] = {}
        self._lock = threading.Lock()

    def get(self, namespace: str | None) -> Netlink:
        inode = _inode(namespace)
        with self._lock:
            handle, opened_on = self._handles.get(namespace, (None, None))
            if handle is not None and opened_on != inode:
                handle.close()
                handle = None
            if handle is None:
                handle = Netlink(namespace)
                self._handles[namespace] = (handle, inode)
            return handle

    def forget(self, namespace: str) -> None:
        with self._lock:
            handle, _ = self._handles.pop(namespace, (None, None))
        if handle is not None:
            handle.close()

    def close(self) -> None:
        with self._lock:
            handles, self._handles = list(self._handles.values()), {}
        for handle, _ in handles:
            handle.close()


def _inode(namespace: str | None) -> int | None:
    if namespace is None:
        return None
    try:
        return os.stat(netns_path(namespace)).st_ino
    except OSError:
        return None


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
                  announcer: Announcer | None = None) -> Drivers:
    return Drivers(
        namespaces=Namespaces(),
        netlink=netlink.get,
        forget_netlink=netlink.forget,
        sysctl=_Sysctl(),
        tx_checksum_off=ethtool.tx_checksum_off_all,
        ovsdb=ovsdb,
        openflow=OpenFlow(ovs_rundir),
        nat=_Nat(),
        announcer=announcer,
    )
