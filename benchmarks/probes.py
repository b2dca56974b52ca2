"""What the benchmark watches, without disturbing what it measures.

Latencies come from kernel events, not from polling: a netlink socket in each watched
namespace joins the neighbour or link multicast group and one thread stamps every change
as it arrives (no dump of 40,000 neighbours every millisecond, which would cost more CPU
than the agent being measured). Where the system sends no event (a port's status in the
server's database, a namespace going away) a read of a few microseconds is repeated
every 2 ms.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from dvr_agent.drivers.netlink_batch import (
    RTM_DELNEIGH,
    RTM_NEWNEIGH,
    parse_attrs,
    parse_messages,
    parse_neighbour,
)
from dvr_agent.drivers.netlink_socket import route_socket
from dvr_agent.drivers.netns_thread import netns_path

T = TypeVar("T")
RTMGRP_LINK, RTMGRP_NEIGH = 0x1, 0x4
RTM_NEWLINK = 16
IFLA_IFNAME, IFLA_MTU = 3, 4
_IFINFOMSG = struct.Struct("=BxHiII")  # family, (pad), type, index, flags, change
SO_RCVBUFFORCE = 33
POLL_INTERVAL = 0.002


class Timeout(AssertionError):
    """What the benchmark waited for did not happen: the run is wrong, not slow."""


def poll(what: str, check: Callable[[], T], timeout: float,
         interval: float = POLL_INTERVAL) -> T:
    """Repeat ``check`` until it returns something true; Timeout naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise Timeout(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class KernelWatch:
    """Neighbour and link changes in a set of namespaces, stamped with time.monotonic().

    ``neighbours[(namespace, ip)]`` is (present, mac, when) of the latest change of a
    permanent entry; ``mtus[(namespace, device)]`` is (mtu, when) of the latest link
    message. ``wait`` blocks on a Condition until a predicate over them holds.
    """

    def __init__(self) -> None:
        self.neighbours: dict[tuple[str, str], tuple[bool, str | None, float]] = {}
        self.mtus: dict[tuple[str, str], tuple[int, float]] = {}
        self._cond = threading.Condition()
        self._epoll = select.epoll()
        self._sockets: dict[int, tuple[str, socket.socket]] = {}
        self._stop_r, self._stop_w = os.pipe()
        self._epoll.register(self._stop_r, select.EPOLLIN)
        self._thread = threading.Thread(target=self._run, name="kernel-watch", daemon=True)
        self._thread.start()

    def watch(self, namespace: str, neighbours: bool = False, links: bool = False) -> None:
        sock = route_socket(namespace)
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 4 * 1024 * 1024)
        sock.bind((0, (RTMGRP_NEIGH if neighbours else 0) | (RTMGRP_LINK if links else 0)))
        sock.setblocking(False)
        with self._cond:
            self._sockets[sock.fileno()] = (namespace, sock)
        self._epoll.register(sock.fileno(), select.EPOLLIN)

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join()
        for _, sock in self._sockets.values():
            sock.close()
        self._epoll.close()
        os.close(self._stop_r)
        os.close(self._stop_w)

    def wait(self, what: str, ready: Callable[[], T], timeout: float) -> T:
        with self._cond:
            result = self._cond.wait_for(ready, timeout)
        if not result:
            raise Timeout(f"timed out after {timeout} s waiting for {what}")
        return result

    def _run(self) -> None:
        while True:
            for fd, _ in self._epoll.poll():
                if fd == self._stop_r:
                    return
                namespace, sock = self._sockets[fd]
                with contextlib.suppress(BlockingIOError):
                    while True:
                        self._take(namespace, sock.recv(1 << 16), time.monotonic())

    def _take(self, namespace: str, data: bytes, when: float) -> None:
        with self._cond:
            for kind, _flags, _seq, body in parse_messages(data):
                if kind in (RTM_NEWNEIGH, RTM_DELNEIGH):
                    entry = parse_neighbour(body)
                    if entry.dst is None or len(entry.dst) != 4:
                        continue
                    ip = socket.inet_ntop(socket.AF_INET, entry.dst)
                    mac = entry.lladdr.hex(":") if entry.lladdr else None
                    self.neighbours[(namespace, ip)] = (kind == RTM_NEWNEIGH, mac, when)
                elif kind == RTM_NEWLINK:
                    attrs = parse_attrs(body, _IFINFOMSG.size)
                    if IFLA_IFNAME in attrs and IFLA_MTU in attrs:
                        name = attrs[IFLA_IFNAME].rstrip(b"\0").decode()
                        self.mtus[(namespace, name)] = (struct.unpack("=I", attrs[IFLA_MTU])[0],
                                                        when)
            self._cond.notify_all()


class PortStatus:
    """A port's status as dvr-server stored it: read-only SQLite reads of its database.

    A port turns ACTIVE when the agent reports it up, which it does only once the port is
    tagged and its flows are in place: the last step of "a VM port is wired".
    """

    def __init__(self, database_path: str) -> None:
        self._db = sqlite3.connect(f"file:{database_path}?mode=ro", uri=True,
                                   check_same_thread=False)

    def status(self, port_id: str) -> str | None:
        row = self._db.execute("SELECT status FROM ports WHERE id = ?", (port_id,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self._db.close()


def namespace_exists(name: str) -> bool:
    return os.path.exists(netns_path(name))


def kernel_netns_cleanup_done(timeout: float) -> bool:
    """Wait (at most ``timeout``) until no kernel worker runs the netns workqueue.

    The kernel dismantles deleted namespaces later, in ``cleanup_net`` under RTNL, the
    lock every veth creation takes: a cold start right after 1,000 namespaces were
    deleted spent most of its time waiting for it (benchmarks/README.md, cold sync).
    A worker doing that work is named ``kworker/...+netns``. Other engineers' tests
    delete namespaces too, so this is best effort: False if it never went quiet.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_comm(pid).endswith("+netns") for pid in os.listdir("/proc")
                   if pid.isdigit()):
            return True
        time.sleep(0.2)
    return False


def _comm(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:  # gone meanwhile
        return ""


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of ``pid`` in MiB (VmHWM: the peak since it started)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


class Pinger:
    """``ping`` at a fixed interval from a namespace, counting what is lost meanwhile.

    A request is lost when a later one was answered and it was not: the requests still
    in flight when ping is stopped are not losses (SIGINT'd, ping counted them lost: at
    10 ms intervals through a busy userspace datapath, 1-4 of them in every run).
    """

    def __init__(self, namespace: str, address: str, interval: float = 0.01) -> None:
        self._proc = subprocess.Popen(
            ["ip", "netns", "exec", namespace, "ping", "-n", "-i", str(interval), address],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def __enter__(self) -> Pinger:
        return self

    def __exit__(self, *exc) -> None:
        """A run that failed or was stopped kills its ping: left running, it kept its VM's
        namespace and tap alive, and the clean-up waited 180 s for that tap to go."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.communicate()

    def stop(self) -> tuple[int, int]:
        """(sent, answered) up to the last request answered."""
        self._proc.send_signal(signal.SIGINT)
        out, _ = self._proc.communicate(timeout=10)
        answered = {int(m.group(1)) for m in _ICMP_SEQ.finditer(out)}
        if not answered:
            raise RuntimeError(f"ping got no answer at all: {out[-500:]!r}")
        return max(answered), len(answered)


_ICMP_SEQ = re.compile(r"bytes from .* icmp_seq=(\d+)")


def cpu_seconds(pids: dict[str, int | None]) -> dict[str, float]:
    """CPU time (user + system) used so far by each named process, and by the whole
    machine (``all``, every core), to tell what limits a figure: the agent, or what
    it waits for."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for name, pid in pids.items():
        if pid is None:
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        used[name] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    with open("/proc/stat") as f:
        total = [int(x) for x in f.readline().split()[1:]]
    used["all"] = (sum(total) - total[3] - total[4]) / tick  # all but idle and iowait
    return used


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after[k] - before[k], 2) for k in after if k in before}



class Profiler:
    """py-spy attached to the agent while a scenario runs (``benchmarks.run --profile``).

    py-spy is not a dependency: ``.venv/bin/pip install py-spy`` first. ``--gil`` samples
    only the thread holding the GIL, so the samples add up to the agent's Python CPU time
    (benchmarks.profile_summary reads them). Without a directory it does nothing.
    """

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self._spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable),
                                                           "py-spy")
        self._proc: subprocess.Popen | None = None
        if directory is not None:
            if not os.access(self._spy, os.X_OK):
                raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
            os.makedirs(directory, exist_ok=True)

    def start(self, pid: int, name: str) -> None:
        if self.directory is None:
            return
        self.stop()
        self._proc = subprocess.Popen(
            [self._spy, "record", "--pid", str(pid), "--rate", "200", "--threads", "--gil",
             "--nonblocking", "--format", "raw", "-o", os.path.join(self.directory, name)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGINT)
            self._proc.wait(timeout=120)
            self._proc = None

    @contextlib.contextmanager
    def recording(self, pid: int, name: str) -> Iterator[None]:
        self.start(pid, name)
        try:
            yield
        finally:
            self.stop()
