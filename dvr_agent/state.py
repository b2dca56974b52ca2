"""The data plane of one host as frozen values: what must exist, and what does.

The compiler produces a HostState (desired), drivers read the same types back from the
kernel and Open vSwitch (actual), and the reconciler diffs the two. Every value compares
by content and is hashable, so a diff is set arithmetic: ``desired - actual`` is what to
add, ``actual - desired`` (limited to what we own) what to remove.

A HostState is split into parts, one per *key* (the host's bridges, one network, one
router, one fip namespace). A key is the unit of work of the reconciler: an event marks
keys dirty, and each dirty key is compiled, read, diffed and applied on its own. Flows of
a key carry a cookie derived from the key, so one key's flows can be dumped and deleted
without looking at the rest of the bridge.

Strings are canonical, so that values read back from the system compare equal to the
compiled ones: MACs lower-case with colons, addresses as ``ipaddress`` prints them,
flows exactly as ``ovs-ofctl dump-flows`` (OpenFlow 1.0) prints them.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

MAIN_TABLE = 254

# Cookies: the upper 16 bits say "dvr-agent", the lower 48 bits name the key.
COOKIE_PREFIX = 0x4456 << 48  # "DV"
COOKIE_PREFIX_MASK = 0xFFFF << 48
COOKIE_MASK_ALL = (1 << 64) - 1


def cookie_for(key: str) -> int:
    """The stable cookie of a key's flows: the same key gives the same cookie on every run.

    A stable cookie (rather than Neutron's new cookie per agent start) is what lets a
    restarted agent recognise its own flows and change nothing.
    """
    digest = hashlib.sha256(key.encode()).digest()
    return COOKIE_PREFIX | int.from_bytes(digest[:6], "big")


def is_our_cookie(cookie: int) -> bool:
    """True for flows that dvr-agent installed, whatever their key."""
    return cookie & COOKIE_PREFIX_MASK == COOKIE_PREFIX


# ---------------------------------------------------------------- keys


class KeyKind(enum.Enum):
    """What a part of the host state is about."""

    HOST = "host"  # bridges, patch and tunnel ports, base pipeline, DVR MAC flows
    NETWORK = "network"  # one network's local VLAN: tunnel flows, VIF tags
    ROUTER = "router"  # qrouter-R and snat-R with their ports and DVR flows
    FIP = "fip"  # fip-E for one external network


HOST_KEY = "host"

# The canary flow's own key: not compiled with any key's state, so no reconcile pass ever
# puts it back; only the canary check does, right after it has queued everything for
# repair. Its absence therefore always means the flows were lost since the last check.
CANARY_KEY = "canary"


def network_key(network_id: str) -> str:
    return f"{KeyKind.NETWORK.value}:{network_id}"


def router_key(router_id: str) -> str:
    return f"{KeyKind.ROUTER.value}:{router_id}"


def fip_key(external_network_id: str) -> str:
    return f"{KeyKind.FIP.value}:{external_network_id}"


def split_key(key: str) -> tuple[KeyKind, str | None]:
    """``"router:<id>"`` -> (KeyKind.ROUTER, "<id>"); ``"host"`` -> (KeyKind.HOST, None)."""
    if key == HOST_KEY:
        return KeyKind.HOST, None
    kind, sep, ident = key.partition(":")
    if not sep or not ident:
        raise ValueError(f"not a state key: {key!r}")
    return KeyKind(kind), ident


# ---------------------------------------------------------------- inside a namespace


@dataclass(frozen=True, slots=True, order=True)
class Address:
    """An IP address on a device: ``cidr`` in interface notation, e.g. ``10.0.0.1/24``."""

    device: str
    cidr: str


@dataclass(frozen=True, slots=True, order=True)
class Route:
    """A route we own (proto static). Kernel-made connected routes are never listed.

    ``dst`` is a network (``0.0.0.0/0``, ``203.0.113.7/32``); a route with a device and
    no gateway is on-link.
    """

    dst: str
    table: int = MAIN_TABLE
    gateway: str | None = None
    device: str | None = None


@dataclass(frozen=True, slots=True, order=True)
class Rule:
    """A policy routing rule: ``from src`` and/or ``iif`` -> ``lookup table``."""

    priority: int
    table: int
    src: str | None = None  # a network, e.g. 10.0.0.0/24 or 10.0.0.5/32
    iif: str | None = None


@dataclass(frozen=True, slots=True, order=True)
class Neighbour:
    """A permanent (static) ARP entry."""

    device: str
    ip: str
    mac: str


@dataclass(frozen=True, slots=True, order=True)
class Sysctl:
    """A sysctl inside a namespace, dotted as sysctl(8) writes it.

    Device keys carry the device name: ``net.ipv4.conf.qr-1a2b3c4d-5e.send_redirects``.
    """

    key: str
    value: str


class LinkKind(enum.Enum):
    """How a device gets into a namespace."""

    OVS_INTERNAL = "ovs-internal"  # OVS internal port; its tap is moved into the namespace
    OVS_VETH = "ovs-veth"  # veth: this end in the namespace, ``peer`` in the host on OVS
    VETH = "veth"  # veth between two of our namespaces (rfp-/fpr-)


@dataclass(frozen=True, slots=True, order=True)
class Link:
    """A device that must exist in a namespace, up, with this MAC and MTU.

    For VETH both ends are listed, each in its own namespace with the other as peer;
    whichever key is reconciled first creates the pair (once both namespaces exist).
    For OVS_VETH, ``peer`` is the host-side end that the OvsPort of the same key plugs.
    """

    name: str
    kind: LinkKind
    mac: str | None = None
    mtu: int | None = None
    peer: str | None = None
    peer_namespace: str | None = None  # VETH only: the namespace of the other end


@dataclass(frozen=True, slots=True)
class NatRules:
    """The agent's own nftables table in a namespace, one tuple of rule lines per chain.

    Rules are written as ``nft list table`` prints them, e.g.
    ``iifname "rfp-1a2b3c4d-5" ip daddr 203.0.113.7 dnat to 10.0.0.5``. An empty
    NatRules means the table must not exist.
    """

    prerouting: tuple[str, ...] = ()
    postrouting: tuple[str, ...] = ()
    output: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.prerouting or self.postrouting or self.output)


@dataclass(frozen=True, slots=True)
class Namespace:
    """Everything that must be inside one network namespace we own."""

    name: str
    links: frozenset[Link] = frozenset()
    addresses: frozenset[Address] = frozenset()
    routes: frozenset[Route] = frozenset()
    rules: frozenset[Rule] = frozenset()
    neighbours: frozenset[Neighbour] = frozenset()
    sysctls: frozenset[Sysctl] = frozenset()
    nat: NatRules = field(default_factory=NatRules)

    def render(self) -> list[str]:
        """Sorted, human-readable lines; equal namespaces render byte for byte the same."""
        lines = [f"netns {self.name}"]
        lines += [f"  link {x.name} {x.kind.value} mac={x.mac} mtu={x.mtu} "
                  f"peer={x.peer}@{x.peer_namespace}" for x in sorted(self.links)]
        lines += [f"  addr {x.cidr} dev {x.device}" for x in sorted(self.addresses)]
        lines += [f"  route {x.dst} table {x.table} via {x.gateway} dev {x.device}"
                  for x in sorted(self.routes, key=_route_order)]
        lines += [f"  rule {x.priority} from {x.src} iif {x.iif} lookup {x.table}"
                  for x in sorted(self.rules, key=_rule_order)]
        lines += [f"  neigh {x.ip} lladdr {x.mac} dev {x.device}"
                  for x in sorted(self.neighbours)]
        lines += [f"  sysctl {x.key}={x.value}" for x in sorted(self.sysctls)]
        for chain in ("prerouting", "postrouting", "output"):
            lines += [f"  nat {chain}: {rule}" for rule in getattr(self.nat, chain)]
        return lines


def _route_order(route: Route) -> tuple:
    return (route.table, route.dst, route.gateway or "", route.device or "")


def _rule_order(rule: Rule) -> tuple:
    return (rule.priority, rule.table, rule.src or "", rule.iif or "")


# ---------------------------------------------------------------- Open vSwitch


@dataclass(frozen=True, slots=True, order=True)
class Bridge:
    name: str
    datapath_type: str  # "system" in production, "netdev" for the userspace datapath
    fail_mode: str = "secure"


@dataclass(frozen=True, slots=True, order=True)
class OvsPort:
    """A port (with its one interface) that we create on a bridge and delete when unwanted.

    ``options`` and ``external_ids`` are sorted ``(key, value)`` tuples so the port stays
    hashable. Every port we make carries ``external_ids`` ``dvr-agent-key=<key>`` so that
    ownership is read, never guessed from a name.
    """

    bridge: str
    name: str
    type: str = ""  # "" (system/veth), "internal", "patch", "vxlan"
    tag: int | None = None
    options: tuple[tuple[str, str], ...] = ()
    external_ids: tuple[tuple[str, str], ...] = ()
    other_config: tuple[tuple[str, str], ...] = ()
    ofport_request: int | None = None


OWNER_EXTERNAL_ID = "dvr-agent-key"


@dataclass(frozen=True, slots=True, order=True)
class VifTag:
    """The local VLAN a port somebody else plugged (a VM's tap) must carry on br-int.

    We never create or delete these ports; we only set their tag (and Neutron's
    ``other_config:net_uuid``), as Neutron's OVS agent does.
    """

    port: str
    tag: int
    network_id: str


@dataclass(frozen=True, slots=True)
class Flow:
    """One OpenFlow flow of ours.

    ``match`` holds the match fields as ``ovs-ofctl dump-flows`` prints them
    (``("arp", "dl_vlan=1", "arp_tpa=10.0.0.1")``) and ``actions`` the action list as it
    prints it with OpenFlow 1.0 (``mod_dl_src:fa:16:3f:b2:34:82,resubmit(,2)``), so a
    dumped flow compares equal to the compiled one. Match order does not matter for
    equality; it is kept for rendering.
    """

    bridge: str
    table: int
    priority: int
    match: tuple[str, ...]
    actions: str
    cookie: int
    # the hash, made once: every pass puts thousands of flows in sets, and building the
    # match's frozenset at every hash was 5 % of a warm restart's CPU. Only the hash is
    # kept (keeping the frozenset too cost 8-10 MB at the peak of a cold sync at 1,000
    # routers); equality builds it only when the matches differ in order.
    # (benchmarks/README.md, fix 19)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash(
            (self.bridge, self.table, self.priority, frozenset(self.match), self.actions,
             self.cookie)))

    @property
    def ident(self) -> tuple[str, int, int, frozenset[str]]:
        """What OpenFlow itself identifies a flow by: bridge, table, priority, match."""
        return (self.bridge, self.table, self.priority, frozenset(self.match))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Flow):
            return NotImplemented
        return (self._hash == other._hash and self.cookie == other.cookie
                and self.actions == other.actions and self.table == other.table
                and self.priority == other.priority and self.bridge == other.bridge
                and (self.match == other.match
                     or frozenset(self.match) == frozenset(other.match)))

    def __hash__(self) -> int:
        return self._hash

    def render(self) -> str:
        """The flow as dump-flows shows it (without cookie and counters), as in the seed:
        ``table=1, priority=1,dl_vlan=1,dl_src=fa:16:3e:ec:f3:dd actions=mod_dl_src:...``.
        """
        table = f"table={self.table}, " if self.table else ""
        match = "".join("," + m for m in self.match)
        return f"{table}priority={self.priority}{match} actions={self.actions}"

    def spec(self) -> str:
        """The flow as ``ovs-ofctl add-flows`` reads it, cookie included."""
        match = "".join("," + m for m in self.match)
        return (f"cookie={self.cookie:#x},table={self.table},priority={self.priority}"
                f"{match},actions={self.actions}")


# ---------------------------------------------------------------- parts and the whole


@dataclass(frozen=True, slots=True)
class KeyState:
    """Everything one key wants on the host."""

    key: str
    namespaces: tuple[Namespace, ...] = ()
    bridges: frozenset[Bridge] = frozenset()
    ports: frozenset[OvsPort] = frozenset()
    vif_tags: frozenset[VifTag] = frozenset()
    flows: frozenset[Flow] = frozenset()

    def render(self) -> list[str]:
        lines = [f"[{self.key}]"]
        for ns in sorted(self.namespaces, key=lambda n: n.name):
            lines += ns.render()
        lines += [f"bridge {b.name} {b.datapath_type} {b.fail_mode}" for b in sorted(self.bridges)]
        lines += [f"port {p.bridge}/{p.name} type={p.type} tag={p.tag} options={p.options} "
                  f"external_ids={p.external_ids} other_config={p.other_config} "
                  f"ofport_request={p.ofport_request}" for p in sorted(self.ports)]
        lines += [f"vif {v.port} tag={v.tag} net={v.network_id}" for v in sorted(self.vif_tags)]
        lines += sorted(f"flow {f.bridge} cookie={f.cookie:#x} {f.render()}" for f in self.flows)
        return lines


@dataclass(frozen=True, slots=True)
class HostState:
    """The complete desired state of a host: one KeyState per key, in key order."""

    parts: tuple[KeyState, ...] = ()

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.parts, key=lambda p: p.key))
        keys = [p.key for p in ordered]
        if len(set(keys)) != len(keys):
            raise ValueError(f"two parts for one key in {keys}")
        object.__setattr__(self, "parts", ordered)

    @classmethod
    def of(cls, parts: Iterable[KeyState]) -> HostState:
        return cls(tuple(parts))

    def by_key(self) -> Mapping[str, KeyState]:
        return {p.key: p for p in self.parts}

    def __iter__(self) -> Iterator[KeyState]:
        return iter(self.parts)

    def flows(self, bridge: str | None = None) -> frozenset[Flow]:
        return frozenset(f for p in self.parts for f in p.flows
                         if bridge is None or f.bridge == bridge)

    def namespaces(self) -> Mapping[str, Namespace]:
        return {ns.name: ns for p in self.parts for ns in p.namespaces}

    def render(self) -> str:
        """The whole state as text; the same facts give the same text, byte for byte."""
        return "\n".join(line for p in self.parts for line in p.render()) + "\n"

