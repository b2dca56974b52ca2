"""What the reconciler needs from the drivers, as Protocols.

The reconciler depends on these shapes only, so its unit tests run against an in-memory
fake (tests/unit/fake_dataplane.py) and the real drivers (dvr_agent/drivers/) are
plugged in by the agent. Method names follow the drivers' own vocabulary: the kernel's
and Open vSwitch's verbs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from dvr_agent.state import (
    Address,
    Bridge,
    Flow,
    Link,
    NatRules,
    Neighbour,
    OvsPort,
    Route,
    Rule,
    VifTag,
)


class LinkView(Protocol):
    """A device as read back from the kernel (drivers.netlink.LinkInfo has this shape)."""

    name: str
    kind: str | None
    mac: str
    mtu: int
    up: bool


class PortView(Protocol):
    """An OVS port as read from the OVSDB replica (drivers.ovsdb.PortInfo has this shape)."""

    bridge: str
    name: str
    type: str
    tag: int | None
    ofport: int | None
    options: Mapping[str, str]
    external_ids: Mapping[str, str]
    other_config: Mapping[str, str]


class NamespacesDriver(Protocol):
    def list(self) -> set[str]: ...
    def exists(self, name: str) -> bool: ...
    def create(self, name: str) -> bool: ...
    def delete(self, name: str) -> bool: ...


class NetlinkHandle(Protocol):
    """One namespace's netlink socket (None = the agent's own namespace)."""

    def links(self) -> Mapping[str, LinkView]: ...
    def link(self, name: str) -> LinkView | None: ...
    def links_named(self, names: Iterable[str]) -> Mapping[str, LinkView]: ...
    # ``links``: what links() just returned, so that each read needs no dump of its own
    def addresses(self, links: Mapping[str, LinkView] | None = None) -> frozenset[Address]: ...
    def routes(self, links: Mapping[str, LinkView] | None = None) -> frozenset[Route]: ...
    def rules(self) -> frozenset[Rule]: ...
    def neighbours(self, links: Mapping[str, LinkView] | None = None
                   ) -> frozenset[Neighbour]: ...
    def veth_add(self, name: str, peer: str, peer_namespace: str | None) -> None: ...
    def veths_add(self, ends: Sequence[tuple[str, Link]]) -> Mapping[str, Exception]: ...
    def link_move(self, name: str, to_namespace: str | None) -> None: ...
    # writes: ``current``/``links``, the devices as the caller just read them, so that a
    # write needs no read of its own; a device not in ``links`` is looked up
    def link_set(self, name: str, *, mac: str | None = None, mtu: int | None = None,
                 up: bool | None = None, current: LinkView | None = None) -> None: ...
    def link_del(self, name: str) -> None: ...
    def addr_add_many(self, addresses: Iterable[Address],
                      links: Mapping[str, LinkView] | None = None) -> int: ...
    def addr_del(self, address: Address) -> None: ...
    def route_replace_many(self, routes: Iterable[Route],
                           links: Mapping[str, LinkView] | None = None) -> int: ...
    def route_del_many(self, routes: Iterable[Route],
                       links: Mapping[str, LinkView] | None = None) -> int: ...
    def rule_add_many(self, rules: Iterable[Rule]) -> int: ...
    def rule_del(self, rule: Rule) -> None: ...
    def neigh_replace(self, entries: Iterable[Neighbour],
                      links: Mapping[str, LinkView] | None = None) -> int: ...
    def neigh_del(self, entries: Iterable[Neighbour],
                  links: Mapping[str, LinkView] | None = None) -> int: ...
    def close(self) -> None: ...


class OvsdbDriver(Protocol):
    def bridges(self) -> Mapping[str, Bridge]: ...
    def ports(self, bridge: str | None = None) -> Mapping[str, PortView]: ...
    def ports_named(self, names: Iterable[str]) -> Mapping[str, PortView]: ...
    def ofport(self, name: str) -> int | None: ...
    def apply(self, *, add_bridges: Iterable[Bridge] = (), del_bridges: Iterable[str] = (),
              add_ports: Iterable[OvsPort] = (), update_ports: Iterable[OvsPort] = (),
              del_ports: Iterable[str] = (), vif_tags: Iterable[VifTag] = (),
              settle: bool = True) -> None: ...
    def settle(self) -> None: ...


class OpenFlowDriver(Protocol):
    def dump(self, bridge: str, cookie: int | None = None,
             mask: int | None = None) -> set[Flow]: ...
    def cookies(self, bridge: str, cookie: int, mask: int = ...) -> set[int]: ...
    def apply(self, bridge: str, add: Iterable[Flow] = (),
              delete: Iterable[Flow] = ()) -> None: ...
    def delete_cookie(self, bridge: str, cookie: int, mask: int = ...) -> None: ...


class NatDriver(Protocol):
    def read(self, namespace: str) -> NatRules | None: ...
    def replace(self, namespace: str, rules: NatRules) -> None: ...


class SysctlDriver(Protocol):
    def get(self, namespace: str | None, keys: Iterable[str]) -> dict[str, str]: ...
    def set(self, namespace: str | None, values: Mapping[str, str]) -> int: ...


class Announcer(Protocol):
    """Gratuitous ARP (drivers.garp.GarpSender): both calls only queue, never block."""

    def announce(self, targets: Iterable[tuple[str, str, str]]) -> None: ...
    def withdraw(self, targets: Iterable[tuple[str, str | None]]) -> None: ...


@dataclass
class Drivers:
    """Everything the reconciler touches the host through."""

    namespaces: NamespacesDriver
    netlink: Callable[[str | None], NetlinkHandle]  # namespace -> its (cached) handle
    forget_netlink: Callable[[str], None]  # drop the cached handle of a deleted namespace
    sysctl: SysctlDriver
    # turn tx checksum offload off on these devices of a namespace (None: the agent's)
    tx_checksum_off: Callable[[str | None, Sequence[str]], int]
    ovsdb: OvsdbDriver
    openflow: OpenFlowDriver
    nat: NatDriver
    announcer: Announcer | None = None  # None: nothing is announced (tests, tools)
