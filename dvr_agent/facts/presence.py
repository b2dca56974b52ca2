"""What is present on this host, and the numbers that follow presence.

A network is present while something here uses it (a VIF, a router port, a fip
namespace's fg-); it holds a local VLAN exactly as long. A router holds a link-local /31
while it is connected to a fip namespace, a floating IP its rule priority while it is
routed here. Users come and go within one facts mutation; claims are collected and
served once, at the end of the mutation, in sorted order, and a user that stays across
the mutation keeps its number (nothing is released and claimed again).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from dvr_agent.facts.allocations import Allocations, HostAllocations


class Presence:
    def __init__(self, saved: Allocations | None) -> None:
        self.alloc = HostAllocations()
        if saved is not None:
            self.alloc.restore(saved)
        self._net_users: dict[str, set[str]] = defaultdict(set)
        self._links: set[str] = set()  # routers connected to a fip namespace
        self._fips: dict[str, frozenset[str]] = {}  # router -> floating IPs routed here
        self._pending_nets: set[str] = set()
        self._pending_links: set[str] = set()
        self._pending_fips: set[str] = set()

    # ---- networks

    def networks(self) -> frozenset[str]:
        return frozenset(n for n, users in self._net_users.items() if users)

    def is_present(self, network_id: str) -> bool:
        return bool(self._net_users.get(network_id))

    def set_user(self, user: str, old: Iterable[str], new: Iterable[str]) -> frozenset[str]:
        """``user`` now uses ``new`` instead of ``old``; returns networks that flipped."""
        old, new = set(old), set(new)
        flipped = set()
        for net in new - old:
            users = self._net_users[net]
            if not users:
                flipped.add(net)
                self._pending_nets.add(net)
            users.add(user)
        gone = []
        for net in old - new:
            users = self._net_users.get(net)
            if users is None:
                continue
            users.discard(user)
            if not users:
                del self._net_users[net]
                gone.append(net)
                flipped.add(net)
        self.alloc.vlans.release(gone)
        self._pending_nets.difference_update(gone)
        return frozenset(flipped)

    # ---- fip connections

    def set_router_fips(self, router_id: str, linked: bool, fips: Iterable[str]) -> bool:
        """The router is (not) connected to its fip namespace, routing these FIPs here.

        Returns whether anything changed.
        """
        fips = frozenset(fips) if linked else frozenset()
        was_linked = router_id in self._links
        old = self._fips.get(router_id, frozenset())
        if was_linked == linked and old == fips:
            return False
        if linked:
            self._links.add(router_id)
            self._pending_links.add(router_id)
            self._fips[router_id] = fips
        else:
            self._links.discard(router_id)
            self._pending_links.discard(router_id)
            self._fips.pop(router_id, None)
            self.alloc.link_local.release([router_id])
        stale = old - fips
        self.alloc.fip_priorities.release(stale)
        self._pending_fips.difference_update(stale)
        self._pending_fips.update(fips - old)
        return True

    # ---- the end of a mutation

    def flush(self) -> None:
        """Serve the claims collected during one mutation, each pool in sorted order."""
        self.alloc.vlans.claim(n for n in self._pending_nets if self.is_present(n))
        self.alloc.link_local.claim(r for r in self._pending_links if r in self._links)
        routed = set().union(*self._fips.values()) if self._pending_fips else set()
        self.alloc.fip_priorities.claim(f for f in self._pending_fips if f in routed)
        self._pending_nets.clear()
        self._pending_links.clear()
        self._pending_fips.clear()
