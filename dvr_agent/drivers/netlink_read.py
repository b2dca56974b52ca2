"""Turning dumped messages into the values of state.py, in canonical form.

Everything comes as the entries of the batch socket's struct-decoded dumps (netlink_batch,
netlink_messages), which is 15-100x faster than pyroute2's decoder.

Only what the agent can own is returned, so the reconciler's ``actual - desired`` never
proposes to delete what the kernel made itself: no IPv6 link-local or host-scope
addresses, no connected or kernel routes (only proto static), no local table, no default
rules, only permanent neighbours. Anything of that kind that our values cannot express
(a multipath route, a rule on fwmark) is left out rather than misread as something else.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from dvr_agent.drivers.netlink_batch import (
    FRA_IIFNAME,
    FRA_PRIORITY,
    FRA_SRC,
    FRA_TABLE,
    NUD_PERMANENT,
    RTN_UNICAST,
    RTPROT_STATIC,
    LinkEntry,
    NeighbourEntry,
    RuleEntry,
)
from dvr_agent.drivers.netlink_messages import AddressEntry, RouteEntry
from dvr_agent.drivers.netlink_values import LOCAL_TABLE
from dvr_agent.state import Address, Neighbour, Route, Rule

IFF_UP = 0x1
_U32 = struct.Struct("=I")
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_HOST = 254
FR_ACT_TO_TBL = 1
# (family, priority, table) of the rules every namespace starts with
DEFAULT_RULES = frozenset({
    (socket.AF_INET, 0, 255), (socket.AF_INET, 32766, 254), (socket.AF_INET, 32767, 253),
    (socket.AF_INET6, 0, 255), (socket.AF_INET6, 32766, 254),
})
# rule selectors that Rule cannot express: a rule using one is somebody else's
# (linux/fib_rules.h: FRA_DST, FRA_GOTO, FRA_FWMARK, FRA_TUN_ID, FRA_FWMASK, FRA_OIFNAME,
# FRA_L3MDEV, FRA_UID_RANGE, FRA_IP_PROTO, FRA_SPORT_RANGE, FRA_DPORT_RANGE)
_FOREIGN_RULE_ATTRS = frozenset({1, 4, 10, 12, 16, 17, 19, 20, 22, 23, 24})


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """A device as the reconciler diffs it against a state.Link.

    ``peer_index`` is IFLA_LINK (a veth's other end); ``peer_namespace_id`` is the nsid,
    as *this* namespace numbers it, of the namespace that end lives in, or None when
    it is in this namespace (compare with ``Netlink.namespace_id``). ``master`` is the
    index of a bridge or bond the device is enslaved to.
    """

    index: int
    name: str
    kind: str | None  # 'veth', 'tun', 'openvswitch', ... (None: a plain device such as lo)
    mac: str | None
    mtu: int
    up: bool
    peer_index: int | None = None
    peer_namespace_id: int | None = None
    master: int | None = None


def link_of(entry: LinkEntry) -> LinkInfo:
    peer, peer_nsid = entry.link, entry.link_netnsid
    return LinkInfo(
        index=entry.index,
        name=entry.name,
        kind=entry.kind,
        mac=entry.address.hex(":") if entry.address else None,
        mtu=entry.mtu,
        up=bool(entry.flags & IFF_UP),
        # in another namespace the peer may well have the same index as this end
        peer_index=peer if peer and (peer != entry.index or peer_nsid is not None) else None,
        peer_namespace_id=peer_nsid,
        master=entry.master,
    )


def address_of(entry: AddressEntry, names: Mapping[int, str]) -> Address | None:
    """IPv4 and global IPv6 addresses; never link-local IPv6 nor host scope (127.0.0.1)."""
    family, scope = entry.family, entry.scope
    if scope == RT_SCOPE_HOST or family not in (socket.AF_INET, socket.AF_INET6) \
            or (family == socket.AF_INET6 and scope != RT_SCOPE_UNIVERSE):
        return None
    device = names.get(entry.index)
    if entry.local is None or device is None:
        return None
    ip = socket.inet_ntop(family, entry.local)
    return Address(device, str(ipaddress.ip_interface(f"{ip}/{entry.prefixlen}")))


def route_of(entry: RouteEntry, names: Mapping[int, str]) -> Route | None:
    """Unicast routes with proto static, in any table but local; single-path only."""
    if entry.protocol != RTPROT_STATIC or entry.type != RTN_UNICAST \
            or entry.table == LOCAL_TABLE or entry.multipath \
            or entry.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    family = entry.family
    dst = socket.inet_ntop(family, entry.dst) if entry.dst else (
        "0.0.0.0" if family == socket.AF_INET else "::")
    device = names.get(entry.oif) if entry.oif is not None else None
    gateway = socket.inet_ntop(family, entry.gateway) if entry.gateway else None
    return Route(
        dst=str(ipaddress.ip_network(f"{dst}/{entry.dst_len}")),
        table=entry.table,
        gateway=str(ipaddress.ip_address(gateway)) if gateway else None,
        device=device,
    )


def rule_of(entry: RuleEntry) -> Rule | None:
    """Lookup rules on source and/or input device, without the kernel's default rules.

    A rule without a source reads the same in IPv4 and IPv6; as a Rule it is one value.
    """
    attrs = entry.attrs
    table = _U32.unpack(attrs[FRA_TABLE])[0] if FRA_TABLE in attrs else entry.table
    priority = _U32.unpack(attrs[FRA_PRIORITY])[0] if FRA_PRIORITY in attrs else 0
    src = socket.inet_ntop(entry.family, attrs[FRA_SRC]) if FRA_SRC in attrs else None
    iif = attrs[FRA_IIFNAME].split(b"\0", 1)[0].decode() if FRA_IIFNAME in attrs else None
    if entry.action != FR_ACT_TO_TBL or entry.dst_len or entry.tos \
            or not _FOREIGN_RULE_ATTRS.isdisjoint(attrs):
        return None
    if src is None and iif is None and (entry.family, priority, table) in DEFAULT_RULES:
        return None
    src_net = str(ipaddress.ip_network(f"{src}/{entry.src_len}")) if src else None
    return Rule(priority=priority, table=table, src=src_net, iif=iif)


def neighbour_of(entry: NeighbourEntry, names: Mapping[int, str]) -> Neighbour | None:
    """Permanent IPv4/IPv6 entries only: the kernel's own (reachable, stale) come and go."""
    if not entry.state & NUD_PERMANENT or entry.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    device = names.get(entry.ifindex)
    if entry.dst is None or entry.lladdr is None or device is None:
        return None
    ip = socket.inet_ntop(socket.AF_INET, entry.dst) if entry.family == socket.AF_INET \
        else str(ipaddress.ip_address(entry.dst))
    return Neighbour(device, ip, entry.lladdr.hex(":"))
