"""Run a function inside a network namespace: the calling thread enters it and comes back.

Some kernel interfaces have no netlink message that names a namespace: sysctls under
/proc/sys/net, the ethtool ioctl, sockets we open ourselves. They act on the namespace
of the calling *thread*, and setns(CLONE_NEWNET) moves only the calling thread. So the
thread enters the namespace, does the work, and setns()es back into the namespace it
came from (held open by a descriptor for the whole call): no helper process (pyroute2's
netns helpers fork, ~5 ms each), and no helper thread either. A thread of its own for
each call was the first design; starting and joining it cost ~7 ms a namespace at a cold
start, waiting for the GIL among busy threads, for 0.5 ms of sysctls
(benchmarks/README.md, fix 28).

What the caller must know: while ``fn`` runs, the thread is in ``namespace``. ``fn``
must not start threads (they would be born there) and must not keep the thread past
its own return. If the way back ever failed, the thread could no longer be trusted to
act on the right namespace: the process stops (see ``_come_back``), and systemd starts
it again.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from dvr_agent.drivers.errors import DriverError

LOG = logging.getLogger(__name__)
NETNS_RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
THREAD_NETNS = "/proc/thread-self/ns/net"  # the calling thread's own, whatever the others'
EXIT_STRANDED = 70  # EX_SOFTWARE: a thread that cannot get back to its namespace

_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


def netns_path(namespace: str) -> str:
    """/run/netns/<name>, or the path itself when given one (e.g. /proc/<pid>/ns/net)."""
    return namespace if namespace.startswith("/") else os.path.join(NETNS_RUN_DIR, namespace)


def enter_netns(namespace: str) -> None:
    """Move the calling thread into ``namespace`` (run_in_netns brings it back)."""
    fd = os.open(netns_path(namespace), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise DriverError(f"setns into {namespace}: {os.strerror(err)}",
                              obj=namespace, errno=err)
    finally:
        os.close(fd)


def run_in_netns(namespace: str, fn: Callable[..., T], *args, **kwargs) -> T:
    """``fn(*args, **kwargs)`` run inside ``namespace`` by this thread; its result or its
    exception, with the thread back in its own namespace either way."""
    with _away(lambda: enter_netns(namespace), namespace):
        return fn(*args, **kwargs)


def run_in_new_netns(fn: Callable[[], T]) -> T:
    """``fn()`` run by this thread inside a new, empty network namespace (unshare), then
    back home; the new namespace outlives the call only if ``fn`` keeps it (a mount)."""
    with _away(_unshare, "a new namespace"):
        return fn()


@contextmanager
def _away(leave: Callable[[], None], where: str) -> Iterator[None]:
    """The block runs after ``leave()`` moved this thread to ``where``; the thread comes
    back home after it, however it ends. If ``leave`` fails, the thread never left."""
    home = os.open(THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)
    try:
        leave()
        try:
            yield
        finally:
            _come_back(home, where)
    finally:
        os.close(home)


def _unshare() -> None:
    if _libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise DriverError(f"unshare(CLONE_NEWNET): {os.strerror(err)}", errno=err)


def _come_back(home: int, namespace: str) -> None:
    """setns() back home. It cannot fail for a descriptor of our own namespace held open;
    if it ever did, every socket and /proc/sys file this thread opened afterwards would
    be ``namespace``'s: stop the process rather than change the wrong namespace."""
    if _libc.setns(home, CLONE_NEWNET) == 0:
        return
    err = ctypes.get_errno()
    LOG.critical("a thread could not leave namespace %s (%s): stopping dvr-agent",
                 namespace, os.strerror(err))
    logging.shutdown()
    os._exit(EXIT_STRANDED)
