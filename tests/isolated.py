"""Run a command in a network and mount namespace of its own: how the root test layers run.

    python tests/isolated.py pytest tests/functional

Functional and lab tests create namespaces, veths, Open vSwitch daemons and brokers. In
a fresh network namespace with private mounts (its own /run/netns, /run/openvswitch,
/sys) they cannot collide with the machine's own networking, nor with a second test run
beside them, and the machine's namespaces are invisible to the leak guard. Everything
the tests make is still checked and removed by the tests themselves (tests/fixtures/
guard.py): the isolation is a second fence, not the cleanup.
"""

from __future__ import annotations

import ctypes
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
ISOLATED_ENV = "DVR_TEST_ISOLATED"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    os.makedirs(target, exist_ok=True)
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode(), flags,
                       data.encode() or None), f"mount {fstype} on {target}")


def isolate() -> None:
    """Move this (single-threaded) process into a new network and mount namespace."""
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET), "unshare(CLONE_NEWNS|CLONE_NEWNET)")
    _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    for private_dir in ("/run/netns", "/run/openvswitch", "/run/dvr-lab", "/run/dvr-agent"):
        _mount("tmpfs", private_dir, "tmpfs", 0, "mode=755")
    _check(_libc.umount2(b"/sys", MNT_DETACH), "umount /sys")
    _mount("sysfs", "/sys", "sysfs")  # so /sys/class/net lists this namespace's devices
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("set", ifname="lo", state="up")
    os.environ[ISOLATED_ENV] = "1"


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: isolated.py COMMAND [ARG...]", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("isolated.py: the root test layers need root (namespaces, OVS, kernel)",
              file=sys.stderr)
        return 2
    isolate()
    os.execvp(argv[0], argv)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
