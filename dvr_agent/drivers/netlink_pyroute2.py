"""pyroute2's RTNL API on sockets made in a namespace by a thread (netlink_socket.py).

Apart from netlink_socket.py so that importing the drivers does not import pyroute2: its
package pulls in ndb and ipdb, 81 ms of the agent's ~340 ms of imports, on the path of
every start (a warm restart's target is 3 s). Only the nsid question (``namespace_id``)
needs these, and ethtool; both import pyroute2 when first used.
"""

from __future__ import annotations

import socket

from pyroute2 import AsyncIPRoute, IPRoute

from dvr_agent.drivers.netlink_socket import route_socket


class AsyncIPRouteIn(AsyncIPRoute):
    """pyroute2's RTNL API on sockets made in a namespace by a thread, not a forked helper.

    pyroute2 opens one socket per calling thread through ``setup_socket``; with
    ``netns=`` it forks a helper for each (~5 ms), and with ``fileno=`` a second thread
    wraps an fd the first already closed (EBADF/ENOTSOCK, seen in 0.9.7). Overriding
    ``setup_socket`` keeps pyroute2's per-thread design and replaces only the fork.
    """

    def __init__(self, namespace: str) -> None:
        self._namespace = namespace
        super().__init__()

    def setup_socket(self) -> socket.socket:
        sock = route_socket(self._namespace)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.status["sndbuf"])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.status["rcvbuf"])
        return sock


class IPRouteIn(IPRoute):
    """The sync IPRoute around AsyncIPRouteIn (IPRoute.__init__ would build its own)."""

    def __init__(self, namespace: str) -> None:  # mirrors pyroute2 0.9.7 IPRoute.__init__
        self.asyncore = AsyncIPRouteIn(namespace)
        self.asyncore.status["event_loop"] = "new"
        self.asyncore.local.keep_event_loop = True
        self.asyncore.event_loop.run_until_complete(self.asyncore.setup_endpoint())
