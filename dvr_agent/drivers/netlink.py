"""One namespace's links, addresses, routes, rules and neighbours, over one kept-open socket.

A thin driver: it reads and writes exactly the values of state.py it is given and decides
nothing. Every write checks its whole input first (InvalidInput, nothing changed), treats
"already so" as success (EEXIST on add; ENOENT/ESRCH/ENODEV/EADDRNOTAVAIL on delete, as
pyroute2's ``ensure`` does), and turns any other kernel error into a DriverError carrying
the value and the errno, for the reconciler to retry or give up.

Everything goes through the hand-encoded batch socket of netlink_batch and the messages of
netlink_messages (one encoder for one route or ten thousand): a cold sync at 1,000 routers
writes ~80,000 objects and a warm restart reads 1,000 namespaces back, and through
pyroute2 each message cost its generic encoder plus a socket with an asyncio loop per
namespace (benchmarks/README.md). pyroute2 is left with the nsid question, which no pass
asks.

Changes are logged at DEBUG, per object: the reconciler logs what changed at INFO, one
line per key (a line per object was 12% of a cold sync's CPU at 1,000 routers).
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

from dvr_agent.drivers import netlink_values as check
from dvr_agent.drivers.errors import DriverError
from dvr_agent.drivers.netlink_batch import (
    CHANGE,
    CREATE,
    DELETE,
    REPLACE,
    RTM_DELNEIGH,
    RTM_DELROUTE,
    RTM_NEWLINK,
    RTM_NEWNEIGH,
    RTM_NEWROUTE,
    BatchSocket,
    Request,
    neigh_payload,
    route_payload,
)
from dvr_agent.drivers.netlink_messages import (
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_DELRULE,
    RTM_GETADDR,
    RTM_GETROUTE,
    RTM_NEWADDR,
    RTM_NEWRULE,
    address_dump_request,
    address_payload,
    link_del_payload,
    link_move_payload,
    link_set_payload,
    parse_address,
    parse_route,
    route_dump_request,
    rule_payload,
    veth_payload,
)
from dvr_agent.drivers.netlink_read import (
    LinkInfo,
    address_of,
    link_of,
    neighbour_of,
    route_of,
    rule_of,
)
from dvr_agent.drivers.netlink_socket import (
    device_in,
    namespace_ref,
    require_namespace,
    route_socket,
)
from dvr_agent.drivers.netns_thread import netns_path
from dvr_agent.state import Address, Link, Neighbour, Route, Rule

if TYPE_CHECKING:
    from pyroute2.netlink.exceptions import NetlinkError

    from dvr_agent.drivers.netlink_pyroute2 import IPRouteIn

LOG = logging.getLogger(__name__)
T = TypeVar("T")

ALREADY_GONE = frozenset({errno.ENOENT, errno.ESRCH, errno.ENODEV, errno.EADDRNOTAVAIL})
ALREADY_THERE = frozenset({errno.EEXIST})
# veth pairs per batch: one descriptor is held open per far namespace of a batch
VETHS_PER_BATCH = 256


def _where(namespace: str | None) -> str:
    return "the agent's namespace" if namespace is None else namespace


class Netlink:
    """One namespace's netlink socket, kept open; ``namespace=None`` is the agent's own.

    Safe to use from several threads: the batch socket takes one batch at a time, and
    pyroute2 (kept for the rare nsid question only) gives each calling thread its socket.
    """

    def __init__(self, namespace: str | None) -> None:
        require_namespace(namespace)
        self.namespace = namespace
        self._ipr: IPRouteIn | None = None
        self._batch: BatchSocket | None = None
        self._batch_lock = threading.Lock()

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
        if self._batch is not None:
            self._batch.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Netlink({self.namespace!r})"

    # ------------------------------------------------------------ read

    def links(self) -> dict[str, LinkInfo]:
        """Every device here, read through the batch socket's struct-decoded dump."""
        return {info.name: info for info in map(link_of, self._batch_socket().links())}

    def link(self, name: str) -> LinkInfo | None:
        """One device by name, or None if there is none here."""
        check.device(name)
        entry = self._batch_socket().link(name)
        return None if entry is None else link_of(entry)

    def links_named(self, names: Iterable[str]) -> dict[str, LinkInfo]:
        """The devices of these names that exist here (one batch of requests)."""
        names = list(names)
        for name in names:
            check.device(name)
        return {name: link_of(entry)
                for name, entry in self._batch_socket().links_named(names).items()}

    def addresses(self, links: Mapping[str, LinkInfo] | None = None) -> frozenset[Address]:
        """IPv4 and global IPv6 addresses; ``links``, if the caller just read them, saves
        a second dump (reading 1,000 namespaces back, it is a dump each)."""
        names = self._names(links)
        found = (address_of(parse_address(body), names) for body in self._batch_socket().dump(
            "address", RTM_GETADDR, address_dump_request()))
        return frozenset(a for a in found if a is not None)

    def routes(self, links: Mapping[str, LinkInfo] | None = None) -> frozenset[Route]:
        names = self._names(links)
        batch = self._batch_socket()
        found = (route_of(parse_route(body), names) for family in (socket.AF_INET, socket.AF_INET6)
                 for body in batch.dump("route", RTM_GETROUTE, route_dump_request(family)))
        return frozenset(r for r in found if r is not None)

    def rules(self) -> frozenset[Rule]:
        """Lookup rules, read through the batch socket's struct-decoded dump."""
        found = (rule_of(e) for family in (socket.AF_INET, socket.AF_INET6)
                 for e in self._batch_socket().rules(family))
        return frozenset(r for r in found if r is not None)

    def neighbours(self, links: Mapping[str, LinkInfo] | None = None) -> frozenset[Neighbour]:
        """Permanent entries, read through the batch socket's struct-decoded dump."""
        names = self._names(links)
        found = (neighbour_of(e, names) for e in self._batch_socket().neighbours())
        return frozenset(n for n in found if n is not None)

    def namespace_id(self, namespace: str | None) -> int | None:
        """The nsid this namespace gives ``namespace`` (None: none assigned, or itself).

        LinkInfo.peer_namespace_id is such an nsid: this is how to tell which namespace
        a veth's other end is in.
        """
        require_namespace(namespace)
        fd = os.open(netns_path(namespace_ref(namespace)), os.O_RDONLY | os.O_CLOEXEC)
        try:
            ipr = self._pyroute2()
            reply = self._kernel(ipr.get_netnsid, fd=fd)
        finally:
            os.close(fd)
        nsid = reply.get("nsid") if reply else None
        # NETNSA_NSID is signed; "none" (-1) may come back read as unsigned
        return None if nsid is None or not 0 <= nsid < 2**31 else nsid

    def _names(self, links: Mapping[str, LinkInfo] | None = None) -> dict[int, str]:
        return {info.index: info.name for info in (links or self.links()).values()}

    def _index(self, name: str) -> int | None:
        info = self.link(name)
        return None if info is None else info.index

    def _require_index(self, name: str, obj: object) -> int:
        index = self._index(name)
        if index is None:
            raise DriverError(f"no device {name} in {_where(self.namespace)}", obj=obj,
                              errno=errno.ENODEV)
        return index

    # ------------------------------------------------------------ links

    def veth_add(self, name: str, peer: str, peer_namespace: str | None) -> None:
        """A veth pair: ``name`` here, ``peer`` in ``peer_namespace`` (None: the agent's).

        One RTM_NEWLINK makes both ends, each already in its namespace, so the pair never
        exists half-made. If ``name`` exists here already, that is "already so".
        """
        check.device(name)
        check.device(peer)
        require_namespace(peer_namespace)
        if self._index(name) is not None:
            return
        fd = os.open(netns_path(namespace_ref(peer_namespace)), os.O_RDONLY | os.O_CLOEXEC)
        try:
            done = self._write(f"adding veth {name}", name, ALREADY_THERE, RTM_NEWLINK, CREATE,
                               veth_payload(name, peer, fd))
        finally:
            os.close(fd)
        if not done and self._index(name) is None:  # EEXIST, but not for `name`: the peer's
            raise DriverError(f"adding veth {name}: its peer name {peer} is taken in "
                              f"{_where(peer_namespace)}", obj=name, errno=errno.EEXIST)
        LOG.debug("veth %s (peer %s in %s) added in %s", name, peer, _where(peer_namespace),
                  _where(self.namespace))

    def veths_add(self, ends: Sequence[tuple[str, Link]]) -> dict[str, DriverError]:
        """Many veth pairs made from here in batches: for each (namespace, link),
        ``link.name`` in that namespace with ``link.mac`` (down: see veth_payload) and
        ``link.peer`` here, up; both with ``link.mtu``. Returns the links the kernel
        refused, by name (EEXIST included: the caller knows whether that can be).

        The whole veth phase of a cold sync in a few sendmsg calls: the far ends' namespaces
        need no socket of their own (one each cost a thread's setns), and no pyroute2.
        """
        for _namespace, link in ends:
            check.device(link.name)
            check.device(link.peer)
            if link.mtu is not None:
                check.mtu(link.mtu, obj=link.name)
            if link.mac is not None:
                check.unicast_mac(link.mac, obj=link.name)
        refused: dict[str, DriverError] = {}
        for start in range(0, len(ends), VETHS_PER_BATCH):
            group = ends[start:start + VETHS_PER_BATCH]
            fds: dict[str, int] = {}
            try:
                for namespace, _link in group:
                    if namespace not in fds:
                        require_namespace(namespace)
                        fds[namespace] = os.open(netns_path(namespace),
                                                 os.O_RDONLY | os.O_CLOEXEC)
                failures = self._batch_socket().execute([
                    Request(link.name, RTM_NEWLINK, CREATE, veth_payload(
                        link.peer, link.name, fds[namespace], mtu=link.mtu, mac=link.mac,
                        up=True)) for namespace, link in group])
            finally:
                for fd in fds.values():
                    os.close(fd)
            for name, err in failures:
                refused[name] = DriverError(f"adding veth {name} from {_where(self.namespace)}: "
                                            f"{os.strerror(err)}", obj=name, errno=err)
        LOG.debug("%d veths added from %s, %d refused", len(ends) - len(refused),
                  _where(self.namespace), len(refused))
        return refused

    def link_move(self, name: str, to_namespace: str | None) -> None:
        """Move device ``name`` from here to ``to_namespace`` (None: the agent's).

        Already there (and gone from here) is success.
        """
        check.device(name)
        require_namespace(to_namespace)
        index = self._index(name)
        if to_namespace == self.namespace or index is None:
            if index is None and not device_in(to_namespace, name):
                raise DriverError(f"no device {name} in {_where(self.namespace)} nor in "
                                  f"{_where(to_namespace)}", obj=name, errno=errno.ENODEV)
            return
        fd = os.open(netns_path(namespace_ref(to_namespace)), os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._write(f"moving {name} to {_where(to_namespace)}", name, frozenset(),
                        RTM_NEWLINK, CHANGE, link_move_payload(index, fd))
        finally:
            os.close(fd)
        LOG.debug("link %s moved from %s to %s", name, _where(self.namespace),
                  _where(to_namespace))

    def link_set(self, name: str, *, mac: str | None = None, mtu: int | None = None,
                 up: bool | None = None, current: LinkInfo | None = None) -> None:
        """Set what is given and differs; what already is so is not written again.
        ``current``: the device as the caller just read it (saves reading it again)."""
        check.device(name)
        mac = None if mac is None else check.unicast_mac(mac, obj=name)
        mtu = None if mtu is None else check.mtu(mtu, obj=name)
        info = current if current is not None and current.name == name else self.link(name)
        if info is None:
            raise DriverError(f"no device {name} in {_where(self.namespace)}", obj=name,
                              errno=errno.ENODEV)
        mac = mac if mac is not None and mac != info.mac else None
        mtu = mtu if mtu is not None and mtu != info.mtu else None
        up = up if up is not None and up != info.up else None
        if mac is not None or mtu is not None or up is not None:
            self._write(f"setting {name}", name, frozenset(), RTM_NEWLINK, CHANGE,
                        link_set_payload(info.index, mac=mac, mtu=mtu, up=up))
            LOG.debug("link %s set mac=%s mtu=%s up=%s in %s", name, mac, mtu, up,
                      _where(self.namespace))

    def link_del(self, name: str) -> None:
        """Delete ``name`` (a veth takes its peer along); absent is success."""
        check.device(name)
        index = self._index(name)
        if index is not None and self._write(f"deleting {name}", name, ALREADY_GONE,
                                             RTM_DELLINK, DELETE, link_del_payload(index)):
            LOG.debug("link %s deleted in %s", name, _where(self.namespace))

    # ------------------------------------------------------------ addresses, rules

    def addr_add(self, a: Address) -> None:
        self.addr_add_many([a])

    def addr_add_many(self, addresses: Iterable[Address],
                      links: Mapping[str, LinkInfo] | None = None) -> int:
        """Add every address (one already there is success); the number added now."""
        valid = [check.address(a) for a in addresses]
        index = self._device_indexes([a.device for a in valid], links)
        requests = []
        for a in valid:
            _known_device(a, a.device, index, missing_is_error=True)
            iface = check.interface(a.cidr)
            requests.append(Request(a, RTM_NEWADDR, CREATE, address_payload(
                index[a.device], str(iface.ip), iface.network.prefixlen)))
        return self._run_batch("address add", ALREADY_THERE, requests)

    def addr_del(self, a: Address) -> None:
        a = check.address(a)
        iface = check.interface(a.cidr)
        index = self._index(a.device)
        if index is not None and self._write(
                f"deleting {a.cidr} from {a.device}", a, ALREADY_GONE, RTM_DELADDR, DELETE,
                address_payload(index, str(iface.ip), iface.network.prefixlen)):
            LOG.debug("address %s deleted from %s in %s", a.cidr, a.device,
                      _where(self.namespace))

    def rule_add(self, r: Rule) -> None:
        self.rule_add_many([r])

    def rule_add_many(self, rules: Iterable[Rule]) -> int:
        """Add every rule; the kernel refuses an identical one (NLM_F_EXCL), which is
        success. The number added now."""
        return self._run_batch("rule add", ALREADY_THERE, [
            Request(r, RTM_NEWRULE, CREATE, _rule_payload(r))
            for r in map(check.rule, rules)])

    def rule_del(self, r: Rule) -> None:
        r = check.rule(r)
        if self._write(f"deleting rule {r}", r, ALREADY_GONE, RTM_DELRULE, DELETE,
                       _rule_payload(r)):
            LOG.debug("rule %s deleted in %s", r, _where(self.namespace))

    # ------------------------------------------------------------ routes, neighbours (batched)

    def route_replace(self, r: Route) -> None:
        self.route_replace_many([r])

    def route_del(self, r: Route) -> None:
        self.route_del_many([r])

    def route_replace_many(self, routes: Iterable[Route],
                           links: Mapping[str, LinkInfo] | None = None) -> int:
        """Write every route (proto static, replace); the number written."""
        valid = [check.route(r) for r in routes]
        index = self._device_indexes([r.device for r in valid], links)
        return self._run_batch("route replace", ALREADY_THERE, [
            Request(r, RTM_NEWROUTE, REPLACE,
                    route_payload(r.dst, r.table, r.gateway, index[r.device]))
            for r in valid if _known_device(r, r.device, index, missing_is_error=True)])

    def route_del_many(self, routes: Iterable[Route],
                       links: Mapping[str, LinkInfo] | None = None) -> int:
        """Delete every route; the number deleted now (already absent ones don't count).

        A route on a device that no longer exists went with the device.
        """
        valid = [check.route(r) for r in routes]
        index = self._device_indexes([r.device for r in valid], links)
        return self._run_batch("route delete", ALREADY_GONE, [
            Request(r, RTM_DELROUTE, DELETE,
                    route_payload(r.dst, r.table, r.gateway, index[r.device],
                                  delete=True))
            for r in valid if _known_device(r, r.device, index, missing_is_error=False)])

    def neigh_replace(self, entries: Iterable[Neighbour],
                      links: Mapping[str, LinkInfo] | None = None) -> int:
        """Write every entry as NUD_PERMANENT (replace); the number written."""
        valid = [check.neighbour(n) for n in entries]
        index = self._device_indexes([n.device for n in valid], links)
        return self._run_batch("neighbour replace", ALREADY_THERE, [
            Request(n, RTM_NEWNEIGH, REPLACE, neigh_payload(index[n.device], n.ip, n.mac))
            for n in valid if _known_device(n, n.device, index, missing_is_error=True)])

    def neigh_del(self, entries: Iterable[Neighbour],
                  links: Mapping[str, LinkInfo] | None = None) -> int:
        """Delete every entry; the number deleted now (entries of a gone device are gone)."""
        valid = [check.neighbour(n) for n in entries]
        index = self._device_indexes([n.device for n in valid], links)
        return self._run_batch("neighbour delete", ALREADY_GONE, [
            Request(n, RTM_DELNEIGH, DELETE, neigh_payload(index[n.device], n.ip, None))
            for n in valid if _known_device(n, n.device, index, missing_is_error=False)])

    def _device_indexes(self, devices: Iterable[str],
                        links: Mapping[str, LinkInfo] | None = None) -> dict[str, int]:
        """name -> index of these devices; from ``links`` (the caller's fresh read) when it
        has them all, else from a dump. A namespace's phase of a cold sync read its links
        three times and each of its devices once more (benchmarks/README.md, fix 30)."""
        wanted = set(devices)
        if not wanted:
            return {}
        if links is not None and wanted <= links.keys():
            return {name: links[name].index for name in wanted}
        return {info.name: info.index for info in self.links().values() if info.name in wanted}

    def _batch_socket(self) -> BatchSocket:
        """The raw socket, opened on first use: most namespaces never need one."""
        with self._batch_lock:
            if self._batch is None:
                self._batch = BatchSocket(route_socket(namespace_ref(self.namespace)))
            return self._batch

    def _pyroute2(self) -> IPRouteIn:
        """pyroute2's socket here, made on first use (only the nsid question needs it;
        pyroute2 is imported then, see netlink_pyroute2.py)."""
        from dvr_agent.drivers.netlink_pyroute2 import IPRouteIn

        with self._batch_lock:
            if self._ipr is None:
                self._ipr = IPRouteIn(namespace_ref(self.namespace))
            return self._ipr

    def _write(self, what: str, obj: object, tolerated: frozenset[int], kind: int, flags: int,
               payload: bytes) -> bool:
        """One change: True if done now, False if the kernel said it already was so."""
        failures = self._batch_socket().execute([Request(obj, kind, flags, payload)])
        if not failures:
            return True
        err = failures[0][1]
        if err in tolerated:
            return False
        raise DriverError(f"{what} in {_where(self.namespace)}: {os.strerror(err)}", obj=obj,
                          errno=err)

    def _run_batch(self, what: str, tolerated: frozenset[int],
                   requests: Sequence[Request]) -> int:
        if not requests:
            return 0
        failures = self._batch_socket().execute(requests)
        refused = [(obj, err) for obj, err in failures if err not in tolerated]
        if refused:
            obj, err = refused[0]
            raise DriverError(f"{what} in {_where(self.namespace)}: {len(refused)} of "
                              f"{len(requests)} refused, first {obj}: {os.strerror(err)}",
                              obj=obj, errno=err)
        done = len(requests) - len(failures)
        LOG.debug("%s in %s: %d applied, %d already so", what, _where(self.namespace), done,
                  len(failures))
        return done

    # ------------------------------------------------------------ errors

    def _kernel(self, method: Callable[..., T], *args: object, **kwargs: object) -> T:
        """A read through pyroute2; a kernel error becomes a DriverError."""
        from pyroute2.netlink.exceptions import NetlinkError  # (imported by _pyroute2)

        try:
            return method(*args, **kwargs)
        except NetlinkError as exc:
            raise self._error(f"{getattr(method, '__name__', 'netlink')} {args}",
                              self.namespace, exc) from exc

    def _error(self, what: str, obj: object, exc: NetlinkError) -> DriverError:
        return DriverError(f"{what} in {_where(self.namespace)}: {os.strerror(exc.code)}",
                           obj=obj, errno=exc.code)


def _known_device(entry: object, device: str, index: dict[str, int], *,
                  missing_is_error: bool) -> bool:
    """False for an entry on a device that is gone (skip it); an error if it must exist."""
    if device in index:
        return True
    if missing_is_error:
        raise DriverError(f"no device {device} for {entry}", obj=entry, errno=errno.ENODEV)
    return False


def _rule_payload(r: Rule) -> bytes:
    src = check.network(r.src) if r.src is not None else None
    return rule_payload(r.priority, r.table, None if src is None else str(src.network_address),
                        0 if src is None else src.prefixlen, r.iif)
