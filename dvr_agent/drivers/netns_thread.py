"""Run a function inside a network namespace, on a short-lived thread, without fork or exec.

Some kernel interfaces have no netlink message that names a namespace: sysctls under
/proc/sys/net, the ethtool ioctl, sockets we open ourselves. They act on the namespace
of the calling *thread*, and setns(CLONE_NEWNET) moves only the calling thread. So a
thread that enters the namespace, does the work and ends is all it takes: no helper
process (pyroute2's netns helpers fork, ~5 ms each), and the caller's thread never
leaves its own namespace.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from dvr_agent.drivers.errors import DriverError

NETNS_RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


def netns_path(namespace: str) -> str:
    """/run/netns/<name>, or the path itself when given one (e.g. /proc/<pid>/ns/net)."""
    return namespace if namespace.startswith("/") else os.path.join(NETNS_RUN_DIR, namespace)


def enter_netns(namespace: str) -> None:
    """Move the calling thread into ``namespace`` (for a thread that is about to end)."""
    fd = os.open(netns_path(namespace), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise DriverError(f"setns into {namespace}: {os.strerror(err)}",
                              obj=namespace, errno=err)
    finally:
        os.close(fd)


def run_in_netns(namespace: str, fn: Callable[..., T], *args, **kwargs) -> T:
    """``fn(*args, **kwargs)`` run inside ``namespace``; its result or its exception."""
    outcome: dict[str, object] = {}

    def body() -> None:
        try:
            enter_netns(namespace)
            outcome["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed back to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=body, name=f"netns:{namespace}", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["result"]  # type: ignore[return-value]
