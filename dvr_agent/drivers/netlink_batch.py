"""Hand-encoded rtnetlink batches: many neighbour and route messages per sendmsg.

Why by hand: a cold sync installs 40,000 permanent neighbours and thousands of routes.
pyroute2 0.9.7 builds every message with its Python encoder (~180 µs each, ~5k
messages/s measured here) while the kernel takes 50k-120k/s; and its own batch path
(``IPRoute(netns=...).sendto(IPBatch...)``) returned the byte count but the kernel got
nothing. RTM_{NEW,DEL}{NEIGH,ROUTE} are fixed structs plus a few attributes, so
``struct.pack`` encodes one in a few µs. Each message asks for an ACK (NLM_F_ACK) and
carries its own sequence number, so every error maps back to the entry that caused it.
Measured here (benchmarks/netlink_bench.py, 2 shared cores): permanent neighbours ~100k/s
written and ~110k/s deleted, 10k and 40k alike, against ~3.5k/s one pyroute2 call at a
time; routes ~75k/s. The neighbour dump is decoded here too (~125k-185k entries/s
against ~8k/s through pyroute2), since a warm restart reads all 40,000 back; and so are
links, dumped or asked for by name: pyroute2 decodes a link in ~0.5 ms, and the agent's
own namespace holds the host end of every veth it plugs (2,000+ at 1,000 routers), so one
dump of it through pyroute2 took over a second (benchmarks/README.md, profile 1).
"""

from __future__ import annotations

import errno as errnos
import os
import select
import socket
import struct
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dvr_agent.drivers.errors import DriverError

SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # ACKs carry only the header of the request, not the whole request
SO_RCVBUFFORCE = 33

NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWROUTE, RTM_DELROUTE = 24, 25
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
RTM_GETRULE = 34

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
REPLACE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL  # EEXIST if it is there
DELETE = NLM_F_REQUEST | NLM_F_ACK
CHANGE = NLM_F_REQUEST | NLM_F_ACK  # an existing object (a link by its index)

RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
NDA_DST, NDA_LLADDR = 1, 2
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_LINKINFO = 1, 3, 4, 5, 10, 18
IFLA_EXT_MASK, IFLA_LINK_NETNSID = 29, 37
IFLA_INFO_KIND = 1
FRA_SRC, FRA_IIFNAME, FRA_PRIORITY, FRA_TABLE = 2, 3, 6, 15
RTEXT_FILTER_SKIP_STATS = 1 << 3  # counters are most of a link message; we never read them
NUD_PERMANENT = 0x80
RTPROT_STATIC = 4
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_NOWHERE = 0, 253, 255
RTN_UNICAST = 1
RT_TABLE_UNSPEC = 0

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_NDMSG = struct.Struct("=BxxxiHBB")  # family, (pad), ifindex, state, flags, type
# family, dst_len, src_len, tos, table, protocol, scope, type, flags
_RTMSG = struct.Struct("=BBBBBBBBI")
_NLATTR = struct.Struct("=HH")  # len, type
_IFINFOMSG = struct.Struct("=BxHiII")  # family, (pad), type, index, flags, change
# fib_rule_hdr: family, dst_len, src_len, tos, table, (res1, res2), action, flags
_FIB_RULE_HDR = struct.Struct("=BBBBBxxBI")
_U32 = struct.Struct("=I")
_S32 = struct.Struct("=i")
_ERR = struct.Struct("=i")

# Messages per sendmsg. The kernel handles a sendmsg's messages one after the other and
# queues one ACK each on our socket before we read any; 1,000 ACKs (a few hundred bytes
# of buffer each) fit the receive buffer we force below, and 1,000 messages fit sndbuf.
CHUNK = 1000
RCVBUF = 8 * 1024 * 1024
SNDBUF = 1024 * 1024
ACK_TIMEOUT = 30.0


def _attr(kind: int, value: bytes) -> bytes:
    length = _NLATTR.size + len(value)
    return _NLATTR.pack(length, kind) + value + b"\0" * (-length % 4)


def neigh_payload(ifindex: int, ip: str, mac: str | None) -> bytes:
    """ndmsg + NDA_DST (+ NDA_LLADDR): a permanent entry, or the key of one to delete.

    ``ip`` and ``mac`` are already checked (netlink_values). inet_pton rather than
    ipaddress: this runs 40,000 times in a cold sync, and ipaddress costs ~10 µs a call.
    """
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    body = _NDMSG.pack(family, ifindex, NUD_PERMANENT, 0, 0) \
        + _attr(NDA_DST, socket.inet_pton(family, ip))
    if mac is not None:
        body += _attr(NDA_LLADDR, bytes.fromhex(mac.replace(":", "")))
    return body


def route_payload(dst: str, table: int, gateway: str | None, oif: int | None,
                  *, delete: bool = False) -> bytes:
    """rtmsg + attributes for a unicast, proto static route (``ip route replace`` shape).

    ``dst`` and ``gateway`` are already checked and canonical (netlink_values). Tables
    above 255 go in RTA_TABLE with rtm_table UNSPEC, as iproute2 writes them; a route
    with no gateway is on-link (scope link). A delete uses scope NOWHERE, which the
    kernel reads as "any scope".
    """
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    address, _, length = dst.partition("/")
    prefixlen = int(length)
    if delete:
        scope = RT_SCOPE_NOWHERE
    else:
        scope = RT_SCOPE_UNIVERSE if gateway is not None else RT_SCOPE_LINK
    rtm_table = table if table < 256 else RT_TABLE_UNSPEC
    body = _RTMSG.pack(family, prefixlen, 0, 0, rtm_table, RTPROT_STATIC, scope, RTN_UNICAST, 0)
    body += _attr(RTA_TABLE, _U32.pack(table))
    if prefixlen:
        body += _attr(RTA_DST, socket.inet_pton(family, address))
    if gateway is not None:
        body += _attr(RTA_GATEWAY, socket.inet_pton(family, gateway))
    if oif is not None:
        body += _attr(RTA_OIF, _U32.pack(oif))
    return body


def nlmsg(kind: int, flags: int, seq: int, payload: bytes) -> bytes:
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(payload), kind, flags, seq, 0) + payload


def parse_acks(data: bytes) -> Iterator[tuple[int, int]]:
    """(seq, errno) for every NLMSG_ERROR in one datagram; errno 0 is a plain ACK."""
    for kind, _flags, seq, body in parse_messages(data):
        if kind == NLMSG_ERROR:
            yield seq, -_ERR.unpack_from(body, 0)[0]


def parse_messages(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(type, flags, seq, body) of every message in one datagram."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, flags, seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        yield kind, flags, seq, data[offset + _NLMSGHDR.size:offset + length]
        offset += (length + 3) & ~3


def parse_attrs(body: bytes, offset: int,
                wanted: frozenset[int] | None = None) -> dict[int, bytes]:
    """The attributes of a message body from ``offset`` on, by type (flags bits masked);
    only those in ``wanted`` if given (a link carries ~40, of which we read 7)."""
    attrs = {}
    unpack, end = _NLATTR.unpack_from, len(body)
    while offset + 4 <= end:
        length, kind = unpack(body, offset)
        if length < 4:
            break
        kind &= 0x3FFF
        if wanted is None or kind in wanted:
            attrs[kind] = body[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return attrs


@dataclass(frozen=True, slots=True)
class NeighbourEntry:
    """One entry of a neighbour dump, undecoded beyond the struct."""

    family: int
    ifindex: int
    state: int
    dst: bytes | None
    lladdr: bytes | None


def parse_neighbour(body: bytes) -> NeighbourEntry:
    family, ifindex, state, _flags, _type = _NDMSG.unpack_from(body, 0)
    attrs = parse_attrs(body, _NDMSG.size)
    return NeighbourEntry(family, ifindex, state, attrs.get(NDA_DST), attrs.get(NDA_LLADDR))


@dataclass(frozen=True, slots=True)
class LinkEntry:
    """One link of a dump (or a get by name), decoded as far as the agent reads links."""

    index: int
    flags: int
    name: str
    kind: str | None  # IFLA_INFO_KIND: 'veth', 'tun', ... (None: a plain device such as lo)
    address: bytes | None
    mtu: int
    link: int | None  # IFLA_LINK: a veth's other end, by its index in its own namespace
    link_netnsid: int | None  # IFLA_LINK_NETNSID: the nsid of the namespace that end is in
    master: int | None


def _string(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode()


def link_request(name: str | None) -> bytes:
    """ifinfomsg (+ IFLA_IFNAME for a get by name), asking the kernel to leave out stats."""
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    if name is not None:
        body += _attr(IFLA_IFNAME, name.encode() + b"\0")
    return body + _attr(IFLA_EXT_MASK, _U32.pack(RTEXT_FILTER_SKIP_STATS))


_LINK_ATTRS = frozenset({IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER,
                         IFLA_LINKINFO, IFLA_LINK_NETNSID})


def parse_link(body: bytes) -> LinkEntry:
    _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(body, 0)
    attrs = parse_attrs(body, _IFINFOMSG.size, _LINK_ATTRS)
    info = parse_attrs(attrs[IFLA_LINKINFO], 0) if IFLA_LINKINFO in attrs else {}
    return LinkEntry(
        index=index, flags=flags, name=_string(attrs.get(IFLA_IFNAME, b"")),
        kind=_string(info[IFLA_INFO_KIND]) if IFLA_INFO_KIND in info else None,
        address=attrs.get(IFLA_ADDRESS), mtu=_U32.unpack(attrs[IFLA_MTU])[0],
        link=_U32.unpack(attrs[IFLA_LINK])[0] if IFLA_LINK in attrs else None,
        link_netnsid=(_S32.unpack(attrs[IFLA_LINK_NETNSID])[0]
                      if IFLA_LINK_NETNSID in attrs else None),
        master=_U32.unpack(attrs[IFLA_MASTER])[0] if IFLA_MASTER in attrs else None)


@dataclass(frozen=True, slots=True)
class RuleEntry:
    """One rule of a dump: its header, and its attributes by type (FRA_*), undecoded."""

    family: int
    dst_len: int
    src_len: int
    tos: int
    table: int
    action: int
    attrs: dict[int, bytes]


def parse_rule(body: bytes) -> RuleEntry:
    family, dst_len, src_len, tos, table, action, _flags = _FIB_RULE_HDR.unpack_from(body, 0)
    return RuleEntry(family, dst_len, src_len, tos, table, action,
                     parse_attrs(body, _FIB_RULE_HDR.size))


@dataclass(frozen=True, slots=True)
class Request:
    """One message of a batch, and the entry it is about (named in its error)."""

    obj: object
    kind: int
    flags: int
    payload: bytes


class BatchSocket:
    """A raw NETLINK_ROUTE socket that sends Requests in chunks and reads back every ACK."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
        sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        sock.bind((0, 0))
        self._sock = sock
        # poll, not select: with a socket or two per namespace, a thousand routers take
        # the agent past descriptor 1024, which select() cannot watch
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)
        self._seq = 0
        self._lock = threading.Lock()  # one batch at a time: ACKs are read by sequence

    def close(self) -> None:
        self._sock.close()

    def _readable(self) -> bool:
        """Wait until an answer can be read; False after ACK_TIMEOUT."""
        return bool(self._poll.poll(ACK_TIMEOUT * 1000))

    def execute(self, requests: Iterable[Request]) -> list[tuple[object, int]]:
        """Send every request; return (obj, errno) of each one the kernel refused.

        The kernel applies the messages one by one: a refused message does not stop the
        ones after it, so the caller learns exactly which entries failed.
        """
        failures: list[tuple[object, int]] = []
        chunk: list[Request] = []
        with self._lock:
            for request in requests:
                chunk.append(request)
                if len(chunk) == CHUNK:
                    failures += self._send_chunk(chunk)
                    chunk = []
            if chunk:
                failures += self._send_chunk(chunk)
        return failures

    def neighbours(self) -> list[NeighbourEntry]:
        """Dump the neighbour table (all families), decoded with struct.

        pyroute2 decodes a dump at ~8k entries/s here; a warm restart reads back 40,000
        permanent entries, which struct does in a fraction of a second.
        """
        return [parse_neighbour(body) for body in self._consistent_dump(
            "neighbour", RTM_GETNEIGH, _NDMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0))]

    def links(self) -> list[LinkEntry]:
        """Dump every link, decoded with struct (consistent: retried if interrupted)."""
        return [parse_link(body) for body in
                self._consistent_dump("link", RTM_GETLINK, link_request(None))]

    def rules(self, family: int) -> list[RuleEntry]:
        """Dump the rules of ``family``, decoded with struct.

        pyroute2 took ~3 ms a namespace for the two families (its generic decoder), most
        of reading a router's namespace back: seconds of a warm restart at 1,000 routers
        (benchmarks/README.md, profile 8).
        """
        return [parse_rule(body) for body in self._consistent_dump(
            "rule", RTM_GETRULE, _FIB_RULE_HDR.pack(family, 0, 0, 0, 0, 0, 0))]

    def dump(self, what: str, kind: int, payload: bytes) -> list[bytes]:
        """The bodies of a dump's answers (``kind`` a RTM_GET*, ``payload`` its header), for
        a decoder of the caller's; consistent, as below."""
        return self._consistent_dump(what, kind, payload)

    def _consistent_dump(self, what: str, kind: int, payload: bytes) -> list[bytes]:
        """A dump's answers, retried while the kernel flags it interrupted (NLM_F_DUMP_INTR:
        the table changed meanwhile, the answer may miss or repeat entries)."""
        with self._lock:
            for _attempt in range(5):
                entries, interrupted = self._dump(kind, payload)
                if not interrupted:
                    return entries
        raise DriverError(f"{what} dump: the table kept changing during the dump",
                          errno=errnos.EINTR)

    def link(self, name: str) -> LinkEntry | None:
        """The link called ``name``, or None if there is none in this namespace."""
        return self.links_named([name]).get(name)

    def links_named(self, names: Iterable[str]) -> dict[str, LinkEntry]:
        """The links of these names that exist here, asked for in one batch.

        A pass needs a few of the agent's own namespace's devices (the host ends of its
        keys' veths), among thousands at scale: asking for them by name beats a dump.
        """
        wanted = sorted(set(names))
        found: dict[str, LinkEntry] = {}
        with self._lock:
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start:start + CHUNK]
                first = self._seq + 1
                self._seq += len(chunk)
                pending = {first + i: name for i, name in enumerate(chunk)}
                self._sock.sendall(b"".join(
                    nlmsg(RTM_GETLINK, NLM_F_REQUEST, seq, link_request(name))
                    for seq, name in pending.items()))
                while pending:
                    if not self._readable():
                        raise DriverError(f"link {pending[min(pending)]}: no answer",
                                          errno=errnos.ETIMEDOUT)
                    for kind, _flags, seq, body in parse_messages(self._sock.recv(1 << 20)):
                        name = pending.pop(seq, None)
                        if name is None:
                            continue  # a late ACK of an abandoned batch
                        if kind != NLMSG_ERROR:
                            found[name] = parse_link(body)
                            continue
                        err = -_ERR.unpack_from(body, 0)[0]
                        if err != errnos.ENODEV:
                            raise DriverError(f"link {name}: {os.strerror(err)}", obj=name,
                                              errno=err)
        return found

    def _dump(self, kind: int, payload: bytes) -> tuple[list[bytes], bool]:
        """The bodies of a dump's answers, and whether the kernel flagged it inconsistent."""
        self._seq += 1
        seq = self._seq
        self._sock.sendall(nlmsg(kind, NLM_F_REQUEST | NLM_F_DUMP, seq, payload))
        bodies: list[bytes] = []
        interrupted = False
        while True:
            if not self._readable():
                raise DriverError("netlink dump: no answer", errno=errnos.ETIMEDOUT)
            for msg_kind, flags, msg_seq, body in parse_messages(self._sock.recv(1 << 20)):
                if msg_seq != seq:
                    continue  # a late ACK of an abandoned batch
                interrupted |= bool(flags & NLM_F_DUMP_INTR)
                if msg_kind == NLMSG_DONE:
                    return bodies, interrupted
                if msg_kind == NLMSG_ERROR:
                    err = -_ERR.unpack_from(body, 0)[0]
                    raise DriverError(f"netlink dump: {os.strerror(err)}", errno=err)
                bodies.append(body)

    def _send_chunk(self, chunk: list[Request]) -> list[tuple[object, int]]:
        first = self._seq + 1
        self._seq += len(chunk)
        pending = {first + i: r.obj for i, r in enumerate(chunk)}
        data = b"".join(nlmsg(r.kind, r.flags, first + i, r.payload)
                        for i, r in enumerate(chunk))
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise DriverError(f"netlink batch send: {exc.strerror}", obj=chunk[0].obj,
                              errno=exc.errno) from exc
        failures = []
        while pending:
            if not self._readable():
                raise DriverError(f"netlink batch: no ACK for {len(pending)} messages "
                                  f"in {ACK_TIMEOUT:.0f} s", obj=next(iter(pending.values())),
                                  errno=errnos.ETIMEDOUT)
            try:
                data = self._sock.recv(65536)
            except OSError as exc:  # ENOBUFS: ACKs were dropped, we cannot tell which
                raise DriverError(f"netlink batch receive: {exc.strerror}",
                                  obj=next(iter(pending.values())), errno=exc.errno) from exc
            for seq, err in parse_acks(data):
                if seq in pending:  # an ACK of an earlier, abandoned batch is not ours
                    obj = pending.pop(seq)
                    if err:
                        failures.append((obj, err))
        return failures
