"""Hand-encoded rtnetlink messages for links, addresses and rules, and the struct decoders
of address and route dumps: what netlink_batch does for neighbours and routes, for the rest
of a router's namespace.

Why by hand, again: at 1,000 routers a cold sync makes ~2,200 veth pairs, sets ~4,400
links, adds ~2,400 addresses and ~2,600 rules, and a warm restart dumps the addresses and
routes of 1,000 namespaces. Through pyroute2 each message costs its generic encoder or
decoder (~0.2-0.5 ms) plus a socket with an asyncio loop per namespace and calling thread;
the profile of a cold sync at 1,000 routers put 82 % of its convergence in creating veths
one pyroute2 call at a time (benchmarks/README.md). These are fixed structs plus a few
attributes (linux/if_link.h, if_addr.h, fib_rules.h, veth.h): ``struct.pack`` makes one in
a few microseconds and a whole pass's worth goes in one batch of sendmsg calls.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from dvr_agent.drivers.netlink_batch import (
    _IFINFOMSG,
    _RTMSG,
    _U32,
    FRA_IIFNAME,
    FRA_PRIORITY,
    FRA_SRC,
    FRA_TABLE,
    IFLA_ADDRESS,
    IFLA_IFNAME,
    IFLA_INFO_KIND,
    IFLA_LINKINFO,
    IFLA_MTU,
    RT_TABLE_UNSPEC,
    RTA_DST,
    RTA_GATEWAY,
    RTA_OIF,
    RTA_TABLE,
    _attr,
    parse_attrs,
)

RTM_DELLINK = 17
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_GETROUTE = 26
RTM_NEWRULE, RTM_DELRULE = 32, 33

IFA_ADDRESS, IFA_LOCAL = 1, 2
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFLA_NET_NS_FD = 28
RTA_MULTIPATH = 9
IFF_UP = 0x1
FR_ACT_TO_TBL = 1

_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
# fib_rule_hdr: family, dst_len, src_len, tos, table, (res1, res2), action, flags
_FIB_RULE_HDR = struct.Struct("=BBBBBxxBI")


def _family(ip: str) -> int:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def _ifname(name: str) -> bytes:
    return _attr(IFLA_IFNAME, name.encode() + b"\0")


def _mac(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


# ------------------------------------------------------------------ links


def link_set_payload(index: int, *, mac: str | None = None, mtu: int | None = None,
                     up: bool | None = None) -> bytes:
    """RTM_NEWLINK on an existing index (no NLM_F_CREATE): set MAC, MTU and/or up/down.

    ``ifi_change`` names the flags meant: IFF_UP only when ``up`` is given, so nothing
    else about the device is touched.
    """
    flags = IFF_UP if up else 0
    change = IFF_UP if up is not None else 0
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)
    if mtu is not None:
        body += _attr(IFLA_MTU, _U32.pack(mtu))
    if mac is not None:
        body += _attr(IFLA_ADDRESS, _mac(mac))
    return body


def link_del_payload(index: int) -> bytes:
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0)


def link_move_payload(index: int, netns_fd: int) -> bytes:
    """RTM_NEWLINK moving the device ``index`` into the namespace behind ``netns_fd``."""
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0) \
        + _attr(IFLA_NET_NS_FD, _U32.pack(netns_fd))


def veth_payload(name: str, peer: str, peer_netns_fd: int, *, mtu: int | None = None,
                 mac: str | None = None, up: bool = False) -> bytes:
    """RTM_NEWLINK making a veth pair: ``name`` in the socket's namespace, ``peer`` in the
    namespace behind ``peer_netns_fd``; each with ``mtu``, the peer with ``mac``, and
    ``name`` up if ``up``.

    One message makes both ends, each already in its namespace and configured, so the
    pair never exists half-made, and the far end needs no socket in its namespace (making
    one takes a thread that setns()es: 20 % of a cold sync's veth phase). The peer cannot
    be brought up in the same message: the kernel opens it before the pair is joined
    (veth_open: ENOTCONN), so it is set up afterwards from its own namespace.
    """
    common = _attr(IFLA_MTU, _U32.pack(mtu)) if mtu is not None else b""
    peer_body = (_IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _ifname(peer)
                 + _attr(IFLA_NET_NS_FD, _U32.pack(peer_netns_fd)) + common)
    if mac is not None:
        peer_body += _attr(IFLA_ADDRESS, _mac(mac))
    info = _attr(IFLA_INFO_KIND, b"veth\0") \
        + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_body))
    flags = IFF_UP if up else 0
    return (_IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, flags, IFF_UP if up else 0)
            + _ifname(name) + common + _attr(IFLA_LINKINFO, info))


# ------------------------------------------------------------------ addresses


def address_payload(index: int, ip: str, prefixlen: int) -> bytes:
    """ifaddrmsg + IFA_LOCAL + IFA_ADDRESS, as ``ip address add IP/LEN dev DEV`` sends it
    (both the same: not a point-to-point peer), scope global."""
    family = _family(ip)
    packed = socket.inet_pton(family, ip)
    return (_IFADDRMSG.pack(family, prefixlen, 0, 0, index)
            + _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed))


@dataclass(frozen=True, slots=True)
class AddressEntry:
    family: int
    prefixlen: int
    scope: int
    index: int
    local: bytes | None  # IFA_LOCAL, else IFA_ADDRESS: the device's own address


def parse_address(body: bytes) -> AddressEntry:
    family, prefixlen, _flags, scope, index = _IFADDRMSG.unpack_from(body, 0)
    attrs = parse_attrs(body, _IFADDRMSG.size, frozenset({IFA_ADDRESS, IFA_LOCAL}))
    return AddressEntry(family, prefixlen, scope, index,
                        attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS))


def address_dump_request() -> bytes:
    return _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)


# ------------------------------------------------------------------ routes (read side)


@dataclass(frozen=True, slots=True)
class RouteEntry:
    family: int
    dst_len: int
    table: int  # RTA_TABLE when present (tables above 255), else rtm_table
    protocol: int
    type: int
    dst: bytes | None
    gateway: bytes | None
    oif: int | None
    multipath: bool


_ROUTE_ATTRS = frozenset({RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE, RTA_MULTIPATH})


def parse_route(body: bytes) -> RouteEntry:
    family, dst_len, _src_len, _tos, table, protocol, _scope, kind, _flags = \
        _RTMSG.unpack_from(body, 0)
    attrs = parse_attrs(body, _RTMSG.size, _ROUTE_ATTRS)
    return RouteEntry(
        family=family, dst_len=dst_len,
        table=_U32.unpack(attrs[RTA_TABLE])[0] if RTA_TABLE in attrs else table,
        protocol=protocol, type=kind, dst=attrs.get(RTA_DST), gateway=attrs.get(RTA_GATEWAY),
        oif=_U32.unpack(attrs[RTA_OIF])[0] if RTA_OIF in attrs else None,
        multipath=RTA_MULTIPATH in attrs)


def route_dump_request(family: int) -> bytes:
    return _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)


# ------------------------------------------------------------------ rules


def rule_payload(priority: int, table: int, src: str | None, src_len: int,
                 iif: str | None) -> bytes:
    """fib_rule_hdr + FRA_PRIORITY + FRA_TABLE (+ FRA_SRC, FRA_IIFNAME): a lookup rule,
    as ``ip rule add [from SRC] [iif DEV] priority P table T`` sends it. A rule without a
    source is IPv4 (state.Rule reads one the same in both families)."""
    family = _family(src) if src is not None else socket.AF_INET
    body = _FIB_RULE_HDR.pack(family, 0, src_len if src is not None else 0, 0,
                              table if table < 256 else RT_TABLE_UNSPEC, FR_ACT_TO_TBL, 0)
    body += _attr(FRA_PRIORITY, _U32.pack(priority)) + _attr(FRA_TABLE, _U32.pack(table))
    if src is not None:
        body += _attr(FRA_SRC, socket.inet_pton(family, src))
    if iif is not None:
        body += _attr(FRA_IIFNAME, iif.encode() + b"\0")
    return body
