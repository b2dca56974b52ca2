"""Netlink sockets inside a namespace, made by the calling thread instead of a fork.

A socket belongs to the namespace it was created in, whichever thread uses it later. So
the thread setns()es into the namespace, creates it and comes back (run_in_netns):
~0.1 ms, where pyroute2's ``IPRoute(netns=...)`` forks a helper for each (~5 ms, and one
per calling thread). With a long-lived socket per namespace this matters once per
namespace; it matters a lot for 1,000 namespaces at start-up.
"""

from __future__ import annotations

import errno
import socket

from dvr_agent.drivers.errors import DriverError
from dvr_agent.drivers.namespaces import is_namespace_mount
from dvr_agent.drivers.netns_thread import netns_path, run_in_netns

NETLINK_ROUTE = 0
# The agent's own namespace: that of the process (its main thread), whichever thread asks.
AGENT_NAMESPACE = "/proc/self/ns/net"


def route_socket(namespace: str | None) -> socket.socket:
    """A NETLINK_ROUTE socket in ``namespace`` (None: the caller's), made without fork.

    SOCK_DGRAM, not RAW: netlink treats both alike, and asyncio (inside pyroute2) accepts
    only a datagram socket.
    """

    def make() -> socket.socket:
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)

    return make() if namespace is None else run_in_netns(namespace, make)


def namespace_ref(namespace: str | None) -> str:
    return AGENT_NAMESPACE if namespace is None else namespace


def require_namespace(namespace: str | None) -> None:
    if namespace is not None and not is_namespace_mount(netns_path(namespace)):
        raise DriverError(f"no namespace {namespace}", obj=namespace, errno=errno.ENOENT)


def device_in(namespace: str | None, name: str) -> bool:
    """Is there a device ``name`` in ``namespace``? (if_nametoindex from in there)"""

    def lookup() -> bool:
        try:
            socket.if_nametoindex(name)
        except OSError:
            return False
        return True

    return run_in_netns(namespace_ref(namespace), lookup)

