"""Numbers the agent hands out itself: local VLANs, link-local /31s, FIP rule priorities.

Pure code. Each number must stay with its owner across recompiles and agent restarts:
a local VLAN that changed under a running VM, or a FIP rule priority that moved, would
cut traffic for no reason. So allocation never renumbers, new owners get the lowest free
value (taken in sorted owner order when several arrive at once, so the result does not
depend on event order within one change), and the whole table can be exported to be
persisted and given back after a restart.

Restored values are *remembered*: kept out of the free pool until their owner claims
them again, or until the pool runs dry (then the oldest remembered value is recycled),
or until the agent says its first full sync is done (``forget_unclaimed``). This is
Neutron's scheme for ``fip-linklocal-networks`` and ``fip-priorities``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

LOCAL_VLAN_MIN, LOCAL_VLAN_MAX = 1, 4094
FIP_LINK_LOCAL_POOL = ipaddress.IPv4Network("169.254.64.0/18")  # neutron DVR_FIP_LL_CIDR
FIP_PRIORITY_MIN, FIP_PRIORITY_MAX = 32768, 72767  # neutron FIP_PR_START .. FIP_PR_END


class PoolExhausted(RuntimeError):
    """Every value of a pool is in use; the owner gets nothing and its key waits."""


class Allocator:
    """Owner -> integer in ``[lo, hi]``; lowest free first; never renumbers a live owner."""

    def __init__(self, lo: int, hi: int) -> None:
        self._lo, self._hi = lo, hi
        self._by_owner: dict[str, int] = {}
        self._remembered: dict[str, int] = {}
        self._used: set[int] = set()
        self._next_hint = lo  # lowest value that may be free
        self.changes = 0  # bumped by whatever changes table(): unchanged, nothing to save

    def get(self, owner: str) -> int | None:
        return self._by_owner.get(owner)

    def claim(self, owners: Iterable[str]) -> None:
        """Give every owner a value; owners new to the table are served in sorted order."""
        for owner in sorted(set(owners) - self._by_owner.keys()):
            value = self._remembered.pop(owner, None)
            if value is None:
                value = self._lowest_free()
                self._used.add(value)
            self._by_owner[owner] = value
            self.changes += 1

    def release(self, owners: Iterable[str]) -> None:
        for owner in owners:
            value = self._by_owner.pop(owner, None)
            if value is not None:
                self._used.discard(value)
                self._next_hint = min(self._next_hint, value)
                self.changes += 1

    def remember(self, table: Mapping[str, int]) -> None:
        """Load persisted values (before any claim): reserved until claimed or forgotten."""
        for owner, value in sorted(table.items()):
            if not self._lo <= value <= self._hi or value in self._used:
                continue  # a corrupt or duplicate line: the owner just gets a new value
            if owner in self._by_owner or owner in self._remembered:
                continue
            self._remembered[owner] = value
            self._used.add(value)
            self.changes += 1

    def forget_unclaimed(self) -> None:
        for value in self._remembered.values():
            self._used.discard(value)
            self._next_hint = min(self._next_hint, value)
            self.changes += 1
        self._remembered.clear()

    def table(self) -> dict[str, int]:
        """Everything to persist: live values and still-remembered ones."""
        return dict(sorted({**self._remembered, **self._by_owner}.items()))

    def _lowest_free(self) -> int:
        value = self._next_hint
        while value <= self._hi and value in self._used:
            value += 1
        if value <= self._hi:
            self._next_hint = value + 1
            return value
        if self._remembered:  # recycle a remembered value rather than fail
            owner = min(self._remembered, key=lambda o: (self._remembered[o], o))
            return self._remembered.pop(owner)
        raise PoolExhausted(f"no free value in {self._lo}..{self._hi}")


def link_local_pair(index: int) -> ipaddress.IPv4Network:
    """The ``index``-th /31 of the FIP link-local pool."""
    return ipaddress.IPv4Network((int(FIP_LINK_LOCAL_POOL.network_address) + 2 * index, 31))


def link_local_index(network: str) -> int | None:
    """Inverse of link_local_pair for a persisted ``169.254.a.b/31``; None if not one."""
    try:
        net = ipaddress.IPv4Network(network)
    except ValueError:
        return None
    if net.prefixlen != 31 or not net.subnet_of(FIP_LINK_LOCAL_POOL):
        return None
    return (int(net.network_address) - int(FIP_LINK_LOCAL_POOL.network_address)) // 2


@dataclass(frozen=True, slots=True)
class Allocations:
    """The persistable form: network -> VLAN, router -> /31, floating IP -> rule priority."""

    local_vlans: Mapping[str, int] = field(default_factory=dict)
    link_local: Mapping[str, str] = field(default_factory=dict)
    fip_priorities: Mapping[str, int] = field(default_factory=dict)


class HostAllocations:
    """The three pools of one host."""

    def __init__(self) -> None:
        self.vlans = Allocator(LOCAL_VLAN_MIN, LOCAL_VLAN_MAX)
        self.link_local = Allocator(0, FIP_LINK_LOCAL_POOL.num_addresses // 2 - 1)
        self.fip_priorities = Allocator(FIP_PRIORITY_MIN, FIP_PRIORITY_MAX)

    def restore(self, saved: Allocations) -> None:
        self.vlans.remember(saved.local_vlans)
        indexes = {r: link_local_index(n) for r, n in saved.link_local.items()}
        self.link_local.remember({r: i for r, i in indexes.items() if i is not None})
        self.fip_priorities.remember(saved.fip_priorities)

    def forget_unclaimed(self) -> None:
        for pool in (self.vlans, self.link_local, self.fip_priorities):
            pool.forget_unclaimed()

    def version(self) -> int:
        """Grows with every change of what ``snapshot`` returns: a pass that allocated
        nothing is told so without building the snapshot (all routers' /31s as text)."""
        return self.vlans.changes + self.link_local.changes + self.fip_priorities.changes

    def snapshot(self) -> Allocations:
        return Allocations(
            local_vlans=self.vlans.table(),
            link_local={r: str(link_local_pair(i)) for r, i in self.link_local.table().items()},
            fip_priorities=self.fip_priorities.table(),
        )
