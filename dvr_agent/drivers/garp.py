"""Gratuitous ARP: tell a segment that an address now answers at this device's MAC.

Sent ``count`` times, ``interval`` seconds apart, by one sender thread: ``announce()`` only
queues (it never blocks the reconciler), and the thread sends each round from a raw
AF_PACKET socket opened inside the namespace (``netns_thread.run_in_netns``), one socket
per namespace per round, closed at once: no process per address (Neutron runs ``arping``
about six times per address, a second each, through a privsep pool), and no socket left
open that would keep a deleted namespace alive.

Each round sends an ARP request and an ARP reply with sender = target = the address
(``arping -U`` and ``arping -A``): Linux updates an existing neighbour entry from either
at once, even one locked by a recent update (``arp_is_garp`` overrides ``locktime``), and
other stacks prefer one or the other. The frame is 42 bytes packed with ``struct``: a
packet library (scapy, os-ken's) would be a large dependency for one fixed layout.
"""

from __future__ import annotations

import heapq
import ipaddress
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from dvr_agent.drivers.netns_thread import run_in_netns

LOG = logging.getLogger(__name__)

ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6
ARP_REQUEST, ARP_REPLY = 1, 2

Target = tuple[str, str, str]  # (namespace, device, IPv4 address)


def garp_frames(mac: bytes, ip: str) -> list[bytes]:
    """The two gratuitous ARP frames (request, reply) announcing ``ip`` at ``mac``."""
    address = ipaddress.IPv4Address(ip).packed
    frames = []
    for op, target_mac in ((ARP_REQUEST, b"\x00" * 6), (ARP_REPLY, mac)):
        ethernet = BROADCAST + mac + struct.pack("!H", ETH_P_ARP)
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, mac, address, target_mac,
                          address)
        frames.append(ethernet + arp)
    return frames


def send_in_namespace(announcements: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Send one round for (device, ip) pairs from the calling thread's namespace.

    Returns (device, ip, reason) for those that could not be sent (a device gone
    meanwhile): an announcement is a courtesy, never worth an exception.
    """
    failed = []
    for device, ip in announcements:
        try:
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as s:
                s.bind((device, ETH_P_ARP))
                mac = s.getsockname()[4]
                for frame in garp_frames(mac, ip):
                    s.send(frame)
        except OSError as exc:
            failed.append((device, ip, exc.strerror or str(exc)))
    return failed


@dataclass(order=True)
class _Due:
    at: float
    target: Target
    generation: int = field(compare=False)


class GarpSender:
    """The sender thread; see the module docstring."""

    def __init__(self, count: int, interval: float,
                 send: Callable[[str, list[tuple[str, str]]], list] | None = None) -> None:
        self._count = count
        self._interval = interval
        self._send = send or (lambda ns, items: run_in_netns(ns, send_in_namespace, items))
        self._heap: list[_Due] = []
        # target -> (rounds left, generation): the live schedule. A heap entry of an older
        # generation was superseded by announcing the target again, and is skipped.
        self._left: dict[Target, tuple[int, int]] = {}
        self._generation = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.sent = 0  # frames' rounds sent, for tests and metrics
        self.failed = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="garp", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def announce(self, targets: Iterable[Target]) -> None:
        """Queue ``count`` rounds for each target, the first now; never blocks.

        A target already queued starts over: the address has just been set up again.
        An address is announced from one device of a namespace at a time: the rounds still
        queued for it on another device (its fg- replaced by a new gateway port's, say)
        are dropped, or a later round from the old device would undo the new one.
        """
        if self._count <= 0:
            return
        now = time.monotonic()
        with self._cond:
            self._generation += 1
            targets = list(targets)
            fresh = {(namespace, ip) for namespace, _device, ip in targets}
            for stale in [t for t in self._left if (t[0], t[2]) in fresh]:
                del self._left[stale]
            for target in targets:
                self._left[target] = (self._count, self._generation)
                heapq.heappush(self._heap, _Due(now, target, self._generation))
            self._cond.notify()

    def withdraw(self, targets: Iterable[tuple[str, str | None]]) -> None:
        """Drop the rounds still queued for (namespace, ip); ip None: the whole namespace.

        An address taken off this host must not be announced from it any more: its new
        host's announcement would be undone.
        """
        with self._cond:
            for namespace, ip in targets:
                for target in [t for t in self._left
                               if t[0] == namespace and ip in (None, t[2])]:
                    del self._left[target]

    def pending(self) -> int:
        with self._cond:
            return len(self._left)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._heap
                                              or self._heap[0].at > time.monotonic()):
                    timeout = self._heap[0].at - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopping:
                    return
                due = self._take_due()
            self._send_round(due)

    def _take_due(self) -> list[Target]:
        now, due = time.monotonic(), []
        while self._heap and self._heap[0].at <= now:
            entry = heapq.heappop(self._heap)
            left, generation = self._left.get(entry.target, (0, -1))
            if generation != entry.generation:
                continue  # superseded by a newer announcement of the same target
            due.append(entry.target)
            if left > 1:
                self._left[entry.target] = (left - 1, generation)
                heapq.heappush(self._heap, _Due(now + self._interval, entry.target,
                                                generation))
            else:
                del self._left[entry.target]
        return due

    def _send_round(self, due: list[Target]) -> None:
        by_namespace: dict[str, list[tuple[str, str]]] = {}
        for namespace, device, ip in due:
            by_namespace.setdefault(namespace, []).append((device, ip))
        for namespace, items in sorted(by_namespace.items()):
            if self._stopping:  # a round after a cold sync spans 1,000 namespaces (seconds):
                return          # the agent's stop waits for this thread
            try:
                failed = self._send(namespace, items)
            except Exception as exc:  # the namespace went away meanwhile
                failed = [(d, ip, str(exc)) for d, ip in items]
            for device, ip, reason in failed:
                LOG.debug("gratuitous ARP for %s on %s in %s not sent: %s", ip, device,
                          namespace, reason)
            self.failed += len(failed)
            self.sent += len(items) - len(failed)
