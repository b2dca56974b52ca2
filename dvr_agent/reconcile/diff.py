"""Desired against actual, per key: what to add, fix and remove. Pure; no I/O.

The diff is the whole intelligence of "apply only the difference": applying the same
state twice yields an empty diff, so a warm restart changes nothing. Mechanics of
getting a device into a namespace (move an OVS tap, create a veth) are left to
apply.py, which checks the kernel again at the moment it acts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dvr_agent.reconcile.drivers import LinkView, PortView
from dvr_agent.state import (
    Address,
    Bridge,
    Flow,
    KeyState,
    Link,
    LinkKind,
    Namespace,
    NatRules,
    Neighbour,
    OvsPort,
    Route,
    Rule,
    VifTag,
)

LOOPBACK = "lo"


@dataclass
class ActualNamespace:
    """What one of our namespaces holds now, as read by the drivers."""

    name: str
    links: Mapping[str, LinkView]
    addresses: frozenset[Address]
    routes: frozenset[Route]
    rules: frozenset[Rule]
    neighbours: frozenset[Neighbour]
    sysctls: Mapping[str, str]
    nat: NatRules | None


@dataclass
class ActualKey:
    """The actual state of everything a key may own."""

    key: str
    namespaces: Mapping[str, ActualNamespace | None]  # None: the namespace does not exist
    ports: Mapping[str, PortView]  # our ports owned by this key
    foreign_ports: Mapping[str, PortView]  # ports named by this key's VifTags
    bridges: Mapping[str, Bridge]
    flows: frozenset[Flow]


@dataclass
class NamespaceDiff:
    name: str
    create: bool = False
    delete: bool = False
    links: list[Link] = field(default_factory=list)  # to create or fix
    replug: list[Link] = field(default_factory=list)  # OVS taps orphaned by a vswitchd restart
    links_del: list[str] = field(default_factory=list)
    addr_add: set[Address] = field(default_factory=set)
    addr_del: set[Address] = field(default_factory=set)
    route_add: set[Route] = field(default_factory=set)
    route_del: set[Route] = field(default_factory=set)
    rule_add: set[Rule] = field(default_factory=set)
    rule_del: set[Rule] = field(default_factory=set)
    neigh_add: set[Neighbour] = field(default_factory=set)
    neigh_del: set[Neighbour] = field(default_factory=set)
    sysctls: dict[str, str] = field(default_factory=dict)
    nat: NatRules | None = None  # the rules to load; None when unchanged

    def size(self) -> int:
        return (int(self.create) + int(self.delete) + len(self.links) + len(self.replug)
                + len(self.links_del) + len(self.addr_add) + len(self.addr_del)
                + len(self.route_add) + len(self.route_del) + len(self.rule_add)
                + len(self.rule_del) + len(self.neigh_add) + len(self.neigh_del)
                + len(self.sysctls) + int(self.nat is not None))


@dataclass
class KeyDiff:
    key: str
    namespaces: list[NamespaceDiff] = field(default_factory=list)
    bridges_add: list[Bridge] = field(default_factory=list)
    ports_add: list[OvsPort] = field(default_factory=list)
    ports_update: list[OvsPort] = field(default_factory=list)
    ports_del: list[str] = field(default_factory=list)
    vif_tags: list[VifTag] = field(default_factory=list)
    flows_add: set[Flow] = field(default_factory=set)
    flows_del: set[Flow] = field(default_factory=set)

    def size(self) -> int:
        return (sum(n.size() for n in self.namespaces) + len(self.bridges_add)
                + len(self.ports_add) + len(self.ports_update) + len(self.ports_del)
                + len(self.vif_tags) + len(self.flows_add) + len(self.flows_del))

    def summary(self) -> str:
        """'+2 links, +40 neigh, -3 flows' — what one log line says about a key's pass."""
        counts: dict[str, int] = {}

        def count(label: str, n: int) -> None:
            if n:
                counts[label] = counts.get(label, 0) + n

        for ns in self.namespaces:
            count("+netns", int(ns.create))
            count("-netns", int(ns.delete))
            count("~links", len(ns.links) + len(ns.replug))
            count("-links", len(ns.links_del))
            count("+addr", len(ns.addr_add))
            count("-addr", len(ns.addr_del))
            count("+routes", len(ns.route_add))
            count("-routes", len(ns.route_del))
            count("+rules", len(ns.rule_add))
            count("-rules", len(ns.rule_del))
            count("+neigh", len(ns.neigh_add))
            count("-neigh", len(ns.neigh_del))
            count("~sysctl", len(ns.sysctls))
            count("~nat", int(ns.nat is not None))
        count("+bridges", len(self.bridges_add))
        count("+ports", len(self.ports_add))
        count("~ports", len(self.ports_update))
        count("-ports", len(self.ports_del))
        count("~vif-tags", len(self.vif_tags))
        count("+flows", len(self.flows_add))
        count("-flows", len(self.flows_del))
        return ", ".join(f"{label[0]}{n} {label[1:]}" for label, n in counts.items())


def diff_key(desired: KeyState, actual: ActualKey,
             host_links: Mapping[str, LinkView]) -> KeyDiff:
    """Everything that must change for ``actual`` to become ``desired``.

    ``host_links`` are the devices in the agent's own namespace: an OVS internal port's
    tap shows up there first, and again after an ovs-vswitchd restart on the userspace
    datapath, while the old copy in the namespace is left orphaned; the host end of a
    veth-plugged port lives there too, and must be up.
    """
    host = host_links
    result = KeyDiff(key=desired.key)
    wanted = {ns.name: ns for ns in desired.namespaces}
    for name in sorted(set(wanted) | set(actual.namespaces)):
        ns_diff = _diff_namespace(wanted.get(name), actual.namespaces.get(name), name, host)
        if ns_diff.size():
            result.namespaces.append(ns_diff)
    result.bridges_add = sorted(b for b in desired.bridges
                                if actual.bridges.get(b.name) != b)
    _diff_ports(desired.ports, actual.ports, result)
    result.vif_tags = sorted(t for t in desired.vif_tags
                             if t.port in actual.foreign_ports
                             and not _vif_tag_applied(t, actual.foreign_ports[t.port]))
    result.flows_add, result.flows_del = diff_flows(desired.flows, actual.flows)
    return result


def diff_flows(desired: Iterable[Flow], actual: Iterable[Flow]) -> tuple[set[Flow], set[Flow]]:
    """(to add, to delete). Same ident with other actions or cookie: delete + add (a modify,
    applied atomically in one bundle)."""
    desired_set, actual_set = set(desired), set(actual)
    return desired_set - actual_set, actual_set - desired_set


def _diff_namespace(want: Namespace | None, have: ActualNamespace | None, name: str,
                    host: Mapping[str, LinkView]) -> NamespaceDiff:
    out = NamespaceDiff(name=name)
    if want is None:
        out.delete = have is not None
        return out
    if have is None:
        out.create = True
        have = ActualNamespace(name, {}, frozenset(), frozenset(), frozenset(), frozenset(),
                               {}, None)
    for link in sorted(want.links):
        current = have.links.get(link.name)
        if current is None:
            out.links.append(link)
        elif link.kind is LinkKind.OVS_INTERNAL and link.name in host:
            out.replug.append(link)
        elif not _link_matches(link, current) or _host_end_down(link, host):
            out.links.append(link)
    wanted_links = {link.name for link in want.links}
    out.links_del = sorted(n for n in have.links if n not in wanted_links and n != LOOPBACK)
    gone = set(out.links_del)
    addresses = frozenset(a for a in have.addresses if a.device != LOOPBACK)
    out.addr_add = set(want.addresses - addresses)
    out.addr_del = {a for a in addresses - want.addresses if a.device not in gone}
    out.route_add = set(want.routes - have.routes)
    out.route_del = {r for r in have.routes - want.routes if r.device not in gone}
    out.rule_add = set(want.rules - have.rules)
    out.rule_del = set(have.rules - want.rules)
    out.neigh_add = set(want.neighbours - have.neighbours)
    out.neigh_del = {n for n in have.neighbours - want.neighbours if n.device not in gone}
    out.sysctls = {s.key: s.value for s in want.sysctls if have.sysctls.get(s.key) != s.value}
    if want.nat != (have.nat or NatRules()):
        out.nat = want.nat
    return out


def _host_end_down(link: Link, host: Mapping[str, LinkView]) -> bool:
    if link.kind is not LinkKind.OVS_VETH:
        return False
    peer = host.get(link.peer)
    return peer is None or not peer.up


def _link_matches(link: Link, current: LinkView) -> bool:
    return (current.up
            and (link.mac is None or current.mac == link.mac)
            and (link.mtu is None or current.mtu == link.mtu))


def _diff_ports(desired: Iterable[OvsPort], actual: Mapping[str, PortView],
                out: KeyDiff) -> None:
    wanted = {p.name: p for p in desired}
    for name, port in sorted(wanted.items()):
        current = actual.get(name)
        if current is None:
            out.ports_add.append(port)
        elif current.bridge != port.bridge or current.type != port.type:
            out.ports_del.append(name)  # a different kind of port: replace it
            out.ports_add.append(port)
        elif not port_matches(port, current):
            out.ports_update.append(port)
    out.ports_del += sorted(n for n in actual if n not in wanted)


def port_matches(port: OvsPort, current: PortView) -> bool:
    """Options must be equal; our external_ids and other_config keys must be present with
    our values (Open vSwitch or an operator may add keys of their own)."""
    return (current.tag == port.tag
            and dict(current.options) == dict(port.options)
            and all(current.external_ids.get(k) == v for k, v in port.external_ids)
            and all(current.other_config.get(k) == v for k, v in port.other_config))


def _vif_tag_applied(tag: VifTag, current: PortView) -> bool:
    return current.tag == tag.tag and current.other_config.get("net_uuid") == tag.network_id
