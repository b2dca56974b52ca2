"""Hosts as namespaces: each lab host is a network, mount and UTS namespace of its own.

Inside a host, programs see what they would see on a real machine: its own devices,
its own ``/run/netns`` (so ``ip netns`` and the agent list only that host's qrouter-/
snat-/fip- namespaces, and the same ``qrouter-<id>`` can exist on two hosts),
``/run/openvswitch`` with its own ovsdb-server and ovs-vswitchd at the default paths,
its own /sys and hostname. The namespace files persist as bind mounts under
/run/dvr-lab, so nothing has to keep running to hold them
(../shared/reference/testbed-recipe.md has the recipe and its pitfalls).

This module is the lab's host *backend*: everything else reaches a host only through
``command()`` (run a program inside it) and ``netns_path()`` (where its network
namespace is, to plug a VM into it); ``agent()`` is a host's dvr-agent as the lab
runs it here: a process it started and knows by PID.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Sequence

from dvr_agent.lab import layout, services
from dvr_agent.lab.layout import HostSpec
from dvr_agent.lab.procs import LabError, alive, run

MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)

# Mount points a host binds its private directories onto. On the machine they stay
# empty directories; the ones that did not exist before are removed by `down`.
HOST_RUN_DIRS = ("/run/openvswitch", "/run/dvr-agent")


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _is_mount_point(path: str) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


def _umount(path: str) -> None:
    if _libc.umount2(path.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (22, 2):  # EINVAL (not a mount point), ENOENT
            raise LabError(f"umount {path}: {os.strerror(err)}")


class NamespaceHosts:
    """Create, enter and destroy lab hosts made of namespaces."""

    name = "namespaces"

    def command(self, host: HostSpec, argv: Sequence[str]) -> list[str]:
        """``argv`` as run inside ``host`` (its network, mount and UTS namespaces)."""
        return ["nsenter", f"--net={self.netns_path(host)}", f"--mount={host.path('mnt')}",
                f"--uts={host.path('uts')}", "--", *argv]

    def netns_path(self, host: HostSpec) -> str:
        return f"/run/netns/{host.netns}"

    def create(self, host: HostSpec) -> None:
        """The host's namespaces and private directories (idempotent)."""
        for sub in ("ovs", "ovs/db", "ovs/log", "agent", "agent/state", "log"):
            os.makedirs(host.path(sub), exist_ok=True)
        if _is_mount_point(host.path("mnt")):
            return
        script = "; ".join([
            "set -e",
            f"hostname {host.name}",
            f"mount --bind {host.path('ovs')} /run/openvswitch",
            f"mount --bind {host.path('agent')} /run/dvr-agent",
            # its own /run/netns: only this host's namespaces, and no copies of the
            # machine's (which they would pin)
            "umount -l /run/netns 2>/dev/null || true",
            f"mount -t tmpfs -o mode=755 {host.netns}-netns /run/netns",
            # /sys as seen from this network namespace
            "umount -l /sys",
            f"mount -t sysfs {host.netns}-sys /sys",
            # no copies of the other hosts' namespace files (they would pin them)
            f"umount -l {layout.BASE_DIR}",
        ])
        argv = ["nsenter", f"--net={self.netns_path(host)}", "--", "unshare",
                f"--mount={host.path('mnt')}", f"--uts={host.path('uts')}",
                "--propagation", "private", "--", "sh", "-c", script]
        # The kernel refuses to bind a mount namespace into one whose id is not smaller
        # (a loop check). Ids come from per-CPU batches (seen on 6.18), so when the lab
        # runs in a mount namespace other than the machine's (isolated tests, a
        # container), a new namespace made on the "wrong" CPU gets a smaller id and the
        # bind fails with EINVAL. One of the CPUs always gives a larger id: try each.
        failure = None
        for cpu in sorted(os.sched_getaffinity(0)):
            for path in ("mnt", "uts"):  # bind targets (a failed attempt may remove them)
                open(host.path(path), "a").close()
            try:
                run(["taskset", "--cpu-list", str(cpu), *argv])
                return
            except LabError as exc:
                failure = exc
                for path in ("mnt", "uts"):
                    _umount(host.path(path))
        raise failure

    def agent(self, host: HostSpec, action: str, state: dict) -> None:
        """Stop, start, restart or kill (SIGKILL) the host's agent, in ``host.mode``: a
        start writes its config anew."""
        if action in ("stop", "restart"):
            services.stop_agent(host, state)
        elif action == "kill":
            services.stop_agent(host, state, sig=signal.SIGKILL)
        if action in ("start", "restart"):
            services.start_agent(self, host, state)

    def logs(self, host: HostSpec | None) -> str:
        """The log file of ``host``'s dvr-agent; of dvr-server for None."""
        path = (layout.controller_path("dvr-server.log") if host is None
                else host.path("agent", "dvr-agent.log"))
        with open(path) as f:
            return f.read()

    def server_state_dir(self) -> str:
        return layout.controller_path("server")  # services.start_server's state_path

    def inner_namespaces(self, host: HostSpec) -> list[int]:
        """Inodes of the network namespaces the host made (qrouter-, snat-, fip-)."""
        if not _is_mount_point(host.path("mnt")):
            return []
        out = run(self.command(host, ["sh", "-c", "stat -L -c %i /run/netns/* 2>/dev/null"]),
                  check=False)
        return [int(x) for x in out.split() if x.isdigit()]

    def destroy(self, host: HostSpec) -> list[int]:
        """Kill what still runs inside the host, then release its namespaces.

        Returns the PIDs it had to kill: processes started by ``ip netns exec`` inside a
        qrouter get a mount namespace of their own, so they are found by the inode of
        any network namespace the host made (testbed pitfall 8).
        """
        inodes = {_inode(self.netns_path(host)), _inode(host.path("mnt")),
                  *self.inner_namespaces(host)}
        inodes.discard(None)
        killed = kill_namespace_members(inodes)
        for path in ("mnt", "uts"):
            _umount(host.path(path))
        return killed


def kill_namespace_members(inodes: set[int | None]) -> list[int]:
    """SIGKILL every process whose network or mount namespace is one of ``inodes``."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        for kind in ("net", "mnt"):
            if _inode(f"/proc/{pid}/ns/{kind}") in inodes and alive(pid):
                found.append(pid)
                break
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(alive(p) for p in found) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found
