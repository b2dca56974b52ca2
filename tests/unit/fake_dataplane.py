"""An in-memory kernel and Open vSwitch with the drivers' shapes, for reconciler unit tests.

It models what the reconciler relies on, no more: named namespaces; devices that exist in
exactly one namespace; veth pairs that die together; OVS internal ports whose tap
appears in the host namespace when the port is added (and again, orphaning the moved
copy, when ovs-vswitchd restarts, as on the userspace datapath); flows that vanish on a
restart; addresses, routes and neighbours that need their device. Every write is
counted, so tests can prove that a second pass writes nothing.
"""

from __future__ import annotations

import errno
import itertools
import threading
from collections import Counter
from dataclasses import dataclass, field

from dvr_agent.drivers.errors import DriverError
from dvr_agent.reconcile.drivers import Drivers
from dvr_agent.state import (
    Address,
    Bridge,
    Flow,
    NatRules,
    Neighbour,
    OvsPort,
    Route,
    Rule,
    VifTag,
)


@dataclass
class FakeLink:
    name: str
    kind: str | None
    mac: str = "02:00:00:00:00:00"
    mtu: int = 1500
    up: bool = False
    peer: tuple[str | None, str] | None = None  # (namespace, name) of a veth peer


@dataclass
class FakeNs:
    links: dict[str, FakeLink] = field(default_factory=dict)
    addresses: set[Address] = field(default_factory=set)
    routes: set[Route] = field(default_factory=set)
    rules: set[Rule] = field(default_factory=set)
    neighbours: set[Neighbour] = field(default_factory=set)
    sysctls: dict[str, str] = field(default_factory=dict)
    nat: NatRules | None = None


@dataclass
class FakePort:
    bridge: str
    name: str
    type: str
    tag: int | None
    ofport: int | None
    options: dict[str, str]
    external_ids: dict[str, str]
    other_config: dict[str, str]


class FakeHost:
    """The kernel and OVS of one host."""

    def __init__(self) -> None:
        self.ns: dict[str | None, FakeNs] = {None: FakeNs()}
        self.ns[None].links["lo"] = FakeLink("lo", None, up=True)
        self.bridges: dict[str, Bridge] = {}
        self.ports: dict[str, FakePort] = {}
        self.flows: dict[str, set[Flow]] = {}
        self.writes: Counter = Counter()
        self.flow_dumps = 0  # ovs-ofctl dump-flows asked of the fake (a read, not a write)
        self.link_dumps: Counter = Counter()  # namespace -> device listings read there
        self.ovs_calls: list[str] = []  # "ovsdb"/"ovsdb unsettled", "flows", "settle"
        self.bundles: list[tuple[str, frozenset[int]]] = []  # (bridge, cookies) a bundle
        self.flows_lock = threading.Lock()
        self.fail_on: set[str] = set()  # names whose writes raise (failure isolation tests)
        self._ofports = itertools.count(10)

    # ------------------------------------------------------------ kernel helpers

    def _check(self, *names: object) -> None:
        for name in names:
            if name in self.fail_on:
                raise DriverError(f"injected failure on {name}", obj=name, errno=errno.EIO)

    def _ns(self, namespace: str | None) -> FakeNs:
        if namespace not in self.ns:
            raise DriverError(f"no namespace {namespace}", obj=namespace, errno=errno.ENOENT)
        return self.ns[namespace]

    def _device(self, namespace: str | None, device: str | None) -> None:
        if device is not None and device not in self._ns(namespace).links:
            raise DriverError(f"no device {device} in {namespace}", obj=device,
                              errno=errno.ENODEV)

    def create_tap(self, name: str) -> None:
        self.ns[None].links[name] = FakeLink(name, "tun", mac="02:11:11:11:11:11")

    def restart_vswitchd(self) -> None:
        """Flows vanish; every internal port gets a fresh tap in the host namespace."""
        for bridge in self.flows:
            self.flows[bridge] = set()
        for port in self.ports.values():
            if port.type == "internal":
                for ns in self.ns.values():
                    link = ns.links.get(port.name)
                    if link is not None:
                        link.up = False  # the orphan: NO-CARRIER
                self.create_tap(port.name)

    # ------------------------------------------------------------ drivers

    def drivers(self) -> Drivers:
        host = self
        return Drivers(
            namespaces=_Namespaces(host),
            netlink=lambda ns: _Netlink(host, ns),
            forget_netlink=lambda ns: None,
            sysctl=_Sysctl(host),
            tx_checksum_off=lambda ns, devices: host._bump("ethtool", len(devices)) or 0,
            ovsdb=_Ovsdb(host),
            openflow=_OpenFlow(host),
            nat=_Nat(host),
        )

    def _bump(self, what: str, n: int = 1) -> None:
        self.writes[what] += n


class _Namespaces:
    def __init__(self, host: FakeHost) -> None:
        self.h = host

    def list(self) -> set[str]:
        return {n for n in self.h.ns if n is not None}

    def exists(self, name: str) -> bool:
        return name in self.h.ns

    def create(self, name: str) -> bool:
        self.h._check(name)
        if name in self.h.ns:
            return False
        self.h.ns[name] = FakeNs(links={"lo": FakeLink("lo", None, up=True)})
        self.h._bump("netns")
        return True

    def delete(self, name: str) -> bool:
        gone = self.h.ns.pop(name, None)
        if gone is None:
            return False
        for link in list(gone.links.values()):  # veth peers elsewhere die with it
            if link.peer is not None:
                peer_ns, peer = link.peer
                self.h.ns.get(peer_ns, FakeNs()).links.pop(peer, None)
        self.h._bump("netns")
        return True


class _Netlink:
    def __init__(self, host: FakeHost, namespace: str | None) -> None:
        self.h, self.name = host, namespace

    @property
    def _me(self) -> FakeNs:
        return self.h._ns(self.name)

    def close(self) -> None:
        pass

    def links(self):
        self.h.link_dumps[self.name] += 1
        return dict(self._me.links)

    def link(self, name: str):
        return self._me.links.get(name)

    def links_named(self, names):
        return {n: self._me.links[n] for n in names if n in self._me.links}

    def addresses(self, links=None) -> frozenset[Address]:
        return frozenset(self._me.addresses)

    def routes(self, links=None) -> frozenset[Route]:
        return frozenset(self._me.routes)

    def rules(self) -> frozenset[Rule]:
        return frozenset(self._me.rules)

    def neighbours(self, links=None) -> frozenset[Neighbour]:
        return frozenset(self._me.neighbours)

    def veth_add(self, name: str, peer: str, peer_namespace: str | None) -> None:
        self.h._check(name, peer)
        other = self.h._ns(peer_namespace)
        if name in self._me.links or peer in other.links:
            raise DriverError("exists", obj=name, errno=errno.EEXIST)
        self._me.links[name] = FakeLink(name, "veth", peer=(peer_namespace, peer))
        other.links[peer] = FakeLink(peer, "veth", peer=(self.name, name))
        self.h._bump("links")

    def veths_add(self, ends) -> dict[str, DriverError]:
        refused = {}
        for namespace, link in ends:
            try:
                _Netlink(self.h, namespace).veth_add(link.name, link.peer, self.name)
            except DriverError as exc:
                refused[link.name] = exc
                continue
            far = self.h._ns(namespace).links[link.name]
            far.mac, far.mtu = link.mac or far.mac, link.mtu or far.mtu
            near = self._me.links[link.peer]
            near.mtu, near.up = link.mtu or near.mtu, True
        return refused

    def link_move(self, name: str, to_namespace: str | None) -> None:
        self.h._device(self.name, name)
        link = self._me.links.pop(name)
        link.up = False
        self.h._ns(to_namespace).links[name] = link
        if link.peer is not None:
            peer_ns, peer = link.peer
            self.h._ns(peer_ns).links[peer].peer = (to_namespace, name)
        self.h._bump("links")

    def link_set(self, name, *, mac=None, mtu=None, up=None, current=None) -> None:
        self.h._check(name)
        self.h._device(self.name, name)
        link = self._me.links[name]
        if mac is not None:
            link.mac = mac
        if mtu is not None:
            link.mtu = mtu
        if up is not None:
            link.up = up
        self.h._bump("links")

    def link_del(self, name: str) -> None:
        link = self._me.links.pop(name, None)
        if link is None:
            return
        if link.peer is not None:
            peer_ns, peer = link.peer
            self.h.ns.get(peer_ns, FakeNs()).links.pop(peer, None)
        for attr in ("addresses", "routes", "neighbours"):
            items = getattr(self._me, attr)
            items -= {x for x in items if x.device == name}
        self.h._bump("links")

    def addr_add(self, a: Address) -> None:
        self.h._device(self.name, a.device)
        self._me.addresses.add(a)
        self.h._bump("addresses")

    def addr_add_many(self, addresses, links=None) -> int:
        return sum(self.addr_add(a) or 1 for a in addresses)

    def addr_del(self, a: Address) -> None:
        self._me.addresses.discard(a)
        self.h._bump("addresses")

    def route_replace(self, r: Route) -> None:
        self.h._device(self.name, r.device)
        self._me.routes -= {x for x in self._me.routes if (x.dst, x.table) == (r.dst, r.table)}
        self._me.routes.add(r)
        self.h._bump("routes")

    def route_del(self, r: Route) -> None:
        self._me.routes.discard(r)
        self.h._bump("routes")

    def route_replace_many(self, routes, links=None) -> int:
        return sum(self.route_replace(r) or 1 for r in routes)

    def route_del_many(self, routes, links=None) -> int:
        return sum(self.route_del(r) or 1 for r in routes)

    def rule_add(self, r: Rule) -> None:
        self._me.rules.add(r)
        self.h._bump("rules")

    def rule_add_many(self, rules) -> int:
        return sum(self.rule_add(r) or 1 for r in rules)

    def rule_del(self, r: Rule) -> None:
        self._me.rules.discard(r)
        self.h._bump("rules")

    def neigh_replace(self, entries, links=None) -> int:
        entries = list(entries)
        for n in entries:
            self.h._device(self.name, n.device)
        self._me.neighbours |= set(entries)
        self.h._bump("neighbours", len(entries))
        return len(entries)

    def neigh_del(self, entries, links=None) -> int:
        entries = list(entries)
        self._me.neighbours -= set(entries)
        self.h._bump("neighbours", len(entries))
        return len(entries)


class _Sysctl:
    def __init__(self, host: FakeHost) -> None:
        self.h = host

    def get(self, namespace, keys) -> dict[str, str]:
        values = self.h._ns(namespace).sysctls
        return {k: values.get(k, "0") for k in keys}

    def set(self, namespace, values) -> int:
        self.h._ns(namespace).sysctls.update(values)
        self.h._bump("sysctls", len(values))
        return len(values)


class _Nat:
    def __init__(self, host: FakeHost) -> None:
        self.h = host

    def read(self, namespace: str) -> NatRules | None:
        return self.h._ns(namespace).nat

    def replace(self, namespace: str, rules: NatRules) -> None:
        self.h._ns(namespace).nat = rules or None
        self.h._bump("nat")


class _Ovsdb:
    def __init__(self, host: FakeHost) -> None:
        self.h = host

    def bridges(self):
        return dict(self.h.bridges)

    def ports(self, bridge=None):
        return {n: p for n, p in self.h.ports.items() if bridge in (None, p.bridge)}

    def ports_named(self, names):
        return {n: self.h.ports[n] for n in names if n in self.h.ports}

    def ofport(self, name):
        port = self.h.ports.get(name)
        return port.ofport if port else None

    def settle(self) -> None:
        self.h.ovs_calls.append("settle")
        self.h._check("settle")  # fail_on {"settle"}: ovs-vswitchd does not catch up

    def apply(self, *, add_bridges=(), del_bridges=(), add_ports=(), update_ports=(),
              del_ports=(), vif_tags=(), settle=True) -> None:
        add_ports, update_ports = list(add_ports), list(update_ports)
        self.h.ovs_calls.append("ovsdb" if settle else "ovsdb unsettled")
        for port in [*add_ports, *update_ports]:
            self.h._check(port.name)
        for bridge in add_bridges:
            self.h.bridges[bridge.name] = bridge
            self.h.flows.setdefault(bridge.name, set())
        for name in del_ports:
            port = self.h.ports.pop(name, None)
            if port is not None and port.type == "internal":
                self.h.ns[None].links.pop(name, None)
        for port in add_ports:
            self.h.ports[port.name] = _fake_port(port, next(self.h._ofports))
            if port.type == "internal":
                self.h.create_tap(port.name)
        for port in update_ports:
            old = self.h.ports[port.name]
            self.h.ports[port.name] = _fake_port(port, old.ofport)
        for tag in vif_tags:
            port = self.h.ports[tag.port]
            port.tag = tag.tag
            port.other_config["net_uuid"] = tag.network_id
        self.h._bump("ovsdb", len(list(add_bridges)) + len(add_ports) + len(update_ports)
                     + len(list(del_ports)) + len(list(vif_tags)))


def _fake_port(port: OvsPort, ofport: int | None) -> FakePort:
    return FakePort(port.bridge, port.name, port.type, port.tag, ofport, dict(port.options),
                    dict(port.external_ids), dict(port.other_config))


class _OpenFlow:
    def __init__(self, host: FakeHost) -> None:
        self.h = host
        self._lock = host.flows_lock

    def dump(self, bridge, cookie=None, mask=None) -> set[Flow]:
        self.h.flow_dumps += 1
        flows = self.h.flows.get(bridge, set())
        if cookie is None:
            return set(flows)
        mask = (1 << 64) - 1 if mask is None else mask
        return {f for f in flows if f.cookie & mask == cookie & mask}

    def cookies(self, bridge, cookie, mask=(1 << 64) - 1) -> set[int]:
        return {f.cookie for f in self.dump(bridge, cookie, mask)}

    def apply(self, bridge, add=(), delete=()) -> None:
        """One bundle, as openflow.OpenFlow.apply: all or nothing, and bundles sent side
        by side are applied one at a time (ovs-vswitchd commits them in turn)."""
        add, delete = list(add), list(delete)
        with self._lock:
            self.h.ovs_calls.append("flows")
            self.h.bundles.append((bridge, frozenset(f.cookie for f in (*add, *delete))))
            for flow in add:
                self.h._check(flow.actions)
            if len({f.ident for f in add}) != len(add):
                raise DriverError(f"{bridge}: two flows to add with one ident", obj=bridge)
            table = self.h.flows.setdefault(bridge, set())
            # as OpenFlow: a strict delete (cookie-exact, as ours are) takes the flow with
            # that ident and cookie; an add replaces the flow with its ident (another
            # cookie or other actions) rather than adding one
            added = {f.ident for f in add}
            gone = {(f.ident, f.cookie) for f in delete}
            table -= {f for f in table if f.ident in added or (f.ident, f.cookie) in gone}
            table |= set(add)
            self.h._bump("flows", len(add) + len(delete))

    def delete_cookie(self, bridge, cookie, mask=(1 << 64) - 1) -> None:
        table = self.h.flows.setdefault(bridge, set())
        table -= {f for f in table if f.cookie & mask == cookie & mask}
        self.h._bump("flows")


__all__ = ["FakeHost", "VifTag"]
