"""Announce a floating IP only once its VM's port is wired on this host.

A floating IP is routed into this host's fip namespace as soon as the server binds its
port here. In a live migration (and when Nova plugs a VM after binding its port) that is
before the VM's tap is on br-int, tagged and given its flows. A gratuitous ARP sent then
moves the upstream router's entry to this host's fg- MAC while nothing behind it answers:
the floating IP is unreachable until the VIF is wired, although the upstream already
"knows" the new place. So the announcement of such a floating IP is held here and sent
when the VIF tracker reports the port wired (what it reports up to the server).

Everything else (gateway and interface addresses, floating IPs served centrally, whose
VM may be on any host) is passed on at once. A held announcement is dropped when the
address is withdrawn. Sits between the reconciler and the sender: both calls still only
queue, never block.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from dvr_agent import names
from dvr_agent.reconcile.drivers import Announcer

LOG = logging.getLogger(__name__)

Target = tuple[str, str, str]  # (namespace, device, IPv4 address)
# (external network id, floating IP) -> the id of its port, if a floating IP this host
# routes through fip-<network>; None for anything else
PortOfFloatingIp = Callable[[str, str], str | None]
HELD_NAMED = 10  # floating IPs named in one log line, the rest counted


class AnnouncementGate:
    """See the module docstring."""

    def __init__(self, sender: Announcer, port_of: PortOfFloatingIp) -> None:
        self._sender = sender
        self._port_of = port_of
        self._lock = threading.Lock()
        self._wired: set[str] = set()  # port ids
        self._held: dict[Target, str] = {}  # target -> the port it waits for

    def announce(self, targets: Iterable[Target]) -> None:
        now: list[Target] = []
        held: list[str] = []
        with self._lock:
            for target in targets:
                port_id = self._waits_for(target)
                if port_id is None or port_id in self._wired:
                    self._held.pop(target, None)
                    now.append(target)
                else:
                    self._held[target] = port_id
                    held.append(f"{target[2]} (port {port_id})")
        if held:  # one line for a whole pass: a start holds every floating IP at once
            LOG.info("gratuitous ARP held until the VM's port is wired here: %s", _some(held))
        if now:
            self._sender.announce(now)

    def withdraw(self, targets: Iterable[tuple[str, str | None]]) -> None:
        targets = list(targets)
        with self._lock:
            for namespace, ip in targets:
                for held in [t for t in self._held if t[0] == namespace and ip in (None, t[2])]:
                    del self._held[held]
        self._sender.withdraw(targets)

    def wired(self, port_ids: Iterable[str]) -> None:
        """The VIF tracker reported these ports up: send what waited for them."""
        with self._lock:
            self._wired.update(port_ids)
            due = [t for t, p in self._held.items() if p in self._wired]
            for target in due:
                del self._held[target]
        if due:
            LOG.info("VM's port wired: gratuitous ARP for %s",
                     _some([f"{ip} on {device}" for _, device, ip in due]))
            self._sender.announce(due)

    def unplugged(self, port_id: str) -> None:
        with self._lock:
            self._wired.discard(port_id)

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def _waits_for(self, target: Target) -> str | None:
        namespace, _device, ip = target
        owned = names.owned_namespace_id(namespace)
        if owned is None or owned[0] != names.FIP_NS_PREFIX:
            return None
        return self._port_of(owned[1], ip)


def _some(items: list[str]) -> str:
    """The first HELD_NAMED items, and how many more (a start holds 1,000 at once)."""
    more = len(items) - HELD_NAMED
    return ", ".join(items[:HELD_NAMED]) + (f" and {more} more" if more > 0 else "")
