"""Named network namespaces, as iproute2 keeps them: a bind mount at /run/netns/<name>.

Keeping iproute2's layout means ``ip netns``, ``ip -n`` and an operator's habits see our
namespaces, and we see theirs (and leave them alone: ``owned`` decides what we may touch).

Creation does not fork. pyroute2's ``netns.create`` forks a helper that unshares and
mounts (~5 ms); the calling thread can do the same and setns() back, because
unshare(CLONE_NEWNET) moves only the calling thread and the mount table is shared by
all threads (~0.5 ms).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import threading
from collections.abc import Callable

from dvr_agent import names
from dvr_agent.drivers.errors import DriverError, InvalidInput, NotOurs
from dvr_agent.drivers.netns_thread import NETNS_RUN_DIR, netns_path, run_in_new_netns

LOG = logging.getLogger(__name__)

MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _os_error(what: str, name: str) -> DriverError:
    err = ctypes.get_errno()
    return DriverError(f"{what} for namespace {name}: {os.strerror(err)}", obj=name, errno=err)


def is_namespace_mount(path: str) -> bool:
    """True if ``path`` is a namespace bind mount, not just the empty file under it.

    A namespace file is a bind mount of an nsfs inode, so it lives on another device than
    the directory holding it. An empty file on the directory's own device is what a
    crash between "create the mount point" and "mount" leaves behind.
    """
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except FileNotFoundError:
        return False


def _make_run_dir_shared() -> None:
    """Make /run/netns a shared mount point, as iproute2 does before every ``netns add``.

    A shared mount propagates our namespace mounts to mount namespaces cloned from ours
    later (and theirs to us), so a namespace made here is visible wherever /run/netns is.
    A plain directory must first become a mount point by bind-mounting it onto itself.
    """
    os.makedirs(NETNS_RUN_DIR, mode=0o755, exist_ok=True)
    run_dir = NETNS_RUN_DIR.encode()
    if _libc.mount(b"none", run_dir, None, MS_SHARED | MS_REC, None) == 0:
        return
    if ctypes.get_errno() != errno.EINVAL:
        raise _os_error("making /run/netns shared", NETNS_RUN_DIR)
    if _libc.mount(run_dir, run_dir, b"none", MS_BIND | MS_REC, None) != 0:
        raise _os_error("bind-mounting /run/netns onto itself", NETNS_RUN_DIR)
    if _libc.mount(b"none", run_dir, None, MS_SHARED | MS_REC, None) != 0:
        raise _os_error("making /run/netns shared", NETNS_RUN_DIR)


def _bind_new_namespace(path: str) -> None:
    """Unshare a new network namespace and bind it to ``path``, from this thread, which
    then returns to its own namespace (netns_thread.run_in_new_netns); the mount alone
    keeps the new namespace alive."""

    def bind() -> None:
        own = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
        if _libc.mount(own, path.encode(), b"none", MS_BIND, None) != 0:
            raise _os_error("bind mount", path)

    run_in_new_netns(bind)


class Namespaces:
    """Create, list and delete named network namespaces (iproute2-compatible).

    ``owned`` decides which names this instance may create or delete; by default the
    agent's ``qrouter-``/``snat-``/``fip-`` + UUID names. Anything else raises NotOurs.
    """

    def __init__(self, owned: Callable[[str], bool] = names.is_owned_namespace) -> None:
        self._owned = owned
        # one creator/deleter at a time in this process: two threads creating the same
        # name must not both mount a namespace on it
        self._lock = threading.Lock()

    def list(self) -> set[str]:
        """Every namespace in /run/netns, ours or not (a leftover empty file is none)."""
        try:
            entries = os.listdir(NETNS_RUN_DIR)
        except FileNotFoundError:
            return set()
        return {name for name in entries if is_namespace_mount(netns_path(name))}

    def exists(self, name: str) -> bool:
        _check_name(name)
        return is_namespace_mount(netns_path(name))

    def create(self, name: str) -> bool:
        """Create ``name`` unless it exists; True if it was created now.

        A leftover empty file at /run/netns/<name> (a crash between creating the mount
        point and mounting) is repaired: the namespace is mounted on it.
        """
        self._check_ours(name)
        path = netns_path(name)
        with self._lock:
            if is_namespace_mount(path):
                return False
            _make_run_dir_shared()
            try:
                os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0))
            except OSError as exc:
                raise DriverError(f"creating {path}: {exc.strerror}", obj=name,
                                  errno=exc.errno) from exc
            try:
                _bind_new_namespace(path)
            except DriverError:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                raise
        LOG.debug("namespace %s created", name)
        return True

    def delete(self, name: str) -> bool:
        """Delete ``name`` if it exists; True if a namespace was deleted now.

        Unmounting detaches the name at once; the kernel tears the namespace down
        asynchronously once nothing holds it, with any devices still in it, so a
        namespace with devices is deleted like an empty one. A leftover empty file is
        removed too (and reported as no namespace).
        """
        self._check_ours(name)
        path = netns_path(name)
        with self._lock:
            if not os.path.lexists(path):
                return False
            mounted = is_namespace_mount(path)
            if mounted and _libc.umount2(path.encode(), MNT_DETACH) != 0:
                raise _os_error("umount", name)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise DriverError(f"removing {path}: {exc.strerror}", obj=name,
                                  errno=exc.errno) from exc
        if mounted:
            LOG.debug("namespace %s deleted", name)
        return mounted

    def _check_ours(self, name: str) -> None:
        _check_name(name)
        if not self._owned(name):
            raise NotOurs(f"namespace {name!r} is not one of ours; not touching it", obj=name)


def _check_name(name: str) -> None:
    """A namespace name is one file name under /run/netns: never a path."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", "..") \
            or "\0" in name or len(name.encode()) > 255:
        raise InvalidInput(f"not a namespace name: {name!r}", obj=name)
