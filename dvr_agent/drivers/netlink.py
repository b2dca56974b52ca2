"""One namespace's links, addresses, routes, rules and neighbours, over one kept-open socket.

A thin driver: it reads and writes exactly the values of state.py it is given and decides
nothing. Every write checks its whole input first (InvalidInput, nothing changed), treats
"already so" as success (EEXIST on add; ENOENT/ESRCH/ENODEV/EADDRNOTAVAIL on delete, as
pyroute2's ``ensure`` does), and turns any other kernel error into a DriverError carrying
the value and the errno, for the reconciler to retry or give up.

Addresses and rules, and changes of links, go through pyroute2. Neighbours and routes go
through the hand-encoded batch of netlink_batch (one encoder for one route or ten
thousand), because a cold sync writes tens of thousands of them; links are read through
it too (the agent's own namespace holds thousands of veth ends).

Changes are logged at DEBUG, per object: the reconciler logs what changed at INFO, one
line per key (a line per object was 12% of a cold sync's CPU at 1,000 routers).
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from pyroute2.netlink.exceptions import NetlinkError

from dvr_agent.drivers import netlink_values as check
from dvr_agent.drivers.errors import DriverError
from dvr_agent.drivers.netlink_batch import (
    DELETE,
    REPLACE,
    RTM_DELNEIGH,
    RTM_DELROUTE,
    RTM_NEWNEIGH,
    RTM_NEWROUTE,
    BatchSocket,
    Request,
    neigh_payload,
    route_payload,
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
    IPRouteIn,
    device_in,
    namespace_ref,
    require_namespace,
    route_socket,
)
from dvr_agent.drivers.netns_thread import netns_path
from dvr_agent.state import Address, Neighbour, Route, Rule

LOG = logging.getLogger(__name__)
T = TypeVar("T")

ALREADY_GONE = frozenset({errno.ENOENT, errno.ESRCH, errno.ENODEV, errno.EADDRNOTAVAIL})
ALREADY_THERE = frozenset({errno.EEXIST})


def _where(namespace: str | None) -> str:
    return "the agent's namespace" if namespace is None else namespace


class Netlink:
    """One namespace's netlink socket, kept open; ``namespace=None`` is the agent's own.

    Safe to use from several threads: pyroute2 gives each calling thread its socket
    (made in the namespace on first use), and the batch socket takes one batch at a time.
    """

    def __init__(self, namespace: str | None) -> None:
        require_namespace(namespace)
        self.namespace = namespace
        self._ipr = IPRouteIn(namespace_ref(namespace))
        self._batch: BatchSocket | None = None
        self._batch_lock = threading.Lock()

    def close(self) -> None:
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

    def addresses(self) -> frozenset[Address]:
        names = self._names()
        found = (address_of(m, names) for m in self._kernel(self._ipr.addr, "dump"))
        return frozenset(a for a in found if a is not None)

    def routes(self) -> frozenset[Route]:
        names = self._names()
        found = (route_of(m, names) for family in (socket.AF_INET, socket.AF_INET6)
                 for m in self._kernel(self._ipr.route, "dump", family=family))
        return frozenset(r for r in found if r is not None)

    def rules(self) -> frozenset[Rule]:
        """Lookup rules, read through the batch socket's struct-decoded dump."""
        found = (rule_of(e) for family in (socket.AF_INET, socket.AF_INET6)
                 for e in self._batch_socket().rules(family))
        return frozenset(r for r in found if r is not None)

    def neighbours(self) -> frozenset[Neighbour]:
        """Permanent entries, read through the batch socket's struct-decoded dump."""
        names = self._names()
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
            reply = self._kernel(self._ipr.get_netnsid, fd=fd)
        finally:
            os.close(fd)
        nsid = reply.get("nsid") if reply else None
        # NETNSA_NSID is signed; "none" (-1) may come back read as unsigned
        return None if nsid is None or not 0 <= nsid < 2**31 else nsid

    def _names(self) -> dict[int, str]:
        return {info.index: info.name for info in self.links().values()}

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
        peer_spec: dict[str, object] = {"ifname": peer}
        fd = None
        if peer_namespace != self.namespace:
            fd = os.open(netns_path(namespace_ref(peer_namespace)), os.O_RDONLY | os.O_CLOEXEC)
            peer_spec["net_ns_fd"] = fd
        try:
            done = self._change(f"adding veth {name}", name, ALREADY_THERE, self._ipr.link,
                                "add", ifname=name, kind="veth", peer=peer_spec)
        finally:
            if fd is not None:
                os.close(fd)
        if not done and self._index(name) is None:  # EEXIST, but not for `name`: the peer's
            raise DriverError(f"adding veth {name}: its peer name {peer} is taken in "
                              f"{_where(peer_namespace)}", obj=name, errno=errno.EEXIST)
        LOG.debug("veth %s (peer %s in %s) added in %s", name, peer, _where(peer_namespace),
                  _where(self.namespace))

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
            self._change(f"moving {name} to {_where(to_namespace)}", name, frozenset(),
                         self._ipr.link, "set", index=index, net_ns_fd=fd)
        finally:
            os.close(fd)
        LOG.debug("link %s moved from %s to %s", name, _where(self.namespace),
                  _where(to_namespace))

    def link_set(self, name: str, *, mac: str | None = None, mtu: int | None = None,
                 up: bool | None = None) -> None:
        """Set what is given and differs; what already is so is not written again."""
        check.device(name)
        mac = None if mac is None else check.unicast_mac(mac, obj=name)
        mtu = None if mtu is None else check.mtu(mtu, obj=name)
        info = self.link(name)
        if info is None:
            raise DriverError(f"no device {name} in {_where(self.namespace)}", obj=name,
                              errno=errno.ENODEV)
        changes: dict[str, object] = {}
        if mac is not None and mac != info.mac:
            changes["address"] = mac
        if mtu is not None and mtu != info.mtu:
            changes["mtu"] = mtu
        if up is not None and up != info.up:
            changes["state"] = "up" if up else "down"
        if changes:
            self._change(f"setting {name}", name, frozenset(), self._ipr.link, "set",
                         index=info.index, **changes)
            LOG.debug("link %s set %s in %s", name, changes, _where(self.namespace))

    def link_del(self, name: str) -> None:
        """Delete ``name`` (a veth takes its peer along); absent is success."""
        check.device(name)
        index = self._index(name)
        if index is not None and self._change(f"deleting {name}", name, ALREADY_GONE,
                                              self._ipr.link, "del", index=index):
            LOG.debug("link %s deleted in %s", name, _where(self.namespace))

    # ------------------------------------------------------------ addresses, rules

    def addr_add(self, a: Address) -> None:
        a = check.address(a)
        iface = check.interface(a.cidr)
        index = self._require_index(a.device, a)
        if self._change(f"adding {a.cidr} on {a.device}", a, ALREADY_THERE, self._ipr.addr,
                        "add", index=index, address=str(iface.ip),
                        prefixlen=iface.network.prefixlen):
            LOG.debug("address %s added on %s in %s", a.cidr, a.device, _where(self.namespace))

    def addr_del(self, a: Address) -> None:
        a = check.address(a)
        iface = check.interface(a.cidr)
        index = self._index(a.device)
        if index is not None and self._change(
                f"deleting {a.cidr} from {a.device}", a, ALREADY_GONE, self._ipr.addr, "del",
                index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen):
            LOG.debug("address %s deleted from %s in %s", a.cidr, a.device,
                      _where(self.namespace))

    def rule_add(self, r: Rule) -> None:
        """Add a rule; the kernel refuses an identical one (NLM_F_EXCL), which is success."""
        r = check.rule(r)
        if self._change(f"adding rule {r}", r, ALREADY_THERE, self._ipr.rule, "add",
                        **_rule_spec(r)):
            LOG.debug("rule %s added in %s", r, _where(self.namespace))

    def rule_del(self, r: Rule) -> None:
        r = check.rule(r)
        if self._change(f"deleting rule {r}", r, ALREADY_GONE, self._ipr.rule, "del",
                        **_rule_spec(r)):
            LOG.debug("rule %s deleted in %s", r, _where(self.namespace))

    # ------------------------------------------------------------ routes, neighbours (batched)

    def route_replace(self, r: Route) -> None:
        self.route_replace_many([r])

    def route_del(self, r: Route) -> None:
        self.route_del_many([r])

    def route_replace_many(self, routes: Iterable[Route]) -> int:
        """Write every route (proto static, replace); the number written."""
        valid = [check.route(r) for r in routes]
        index = self._device_indexes(r.device for r in valid)
        return self._run_batch("route replace", ALREADY_THERE, [
            Request(r, RTM_NEWROUTE, REPLACE,
                    route_payload(r.dst, r.table, r.gateway, index[r.device]))
            for r in valid if _known_device(r, r.device, index, missing_is_error=True)])

    def route_del_many(self, routes: Iterable[Route]) -> int:
        """Delete every route; the number deleted now (already absent ones don't count).

        A route on a device that no longer exists went with the device.
        """
        valid = [check.route(r) for r in routes]
        index = self._device_indexes(r.device for r in valid)
        return self._run_batch("route delete", ALREADY_GONE, [
            Request(r, RTM_DELROUTE, DELETE,
                    route_payload(r.dst, r.table, r.gateway, index[r.device],
                                  delete=True))
            for r in valid if _known_device(r, r.device, index, missing_is_error=False)])

    def neigh_replace(self, entries: Iterable[Neighbour]) -> int:
        """Write every entry as NUD_PERMANENT (replace); the number written."""
        valid = [check.neighbour(n) for n in entries]
        index = self._device_indexes(n.device for n in valid)
        return self._run_batch("neighbour replace", ALREADY_THERE, [
            Request(n, RTM_NEWNEIGH, REPLACE, neigh_payload(index[n.device], n.ip, n.mac))
            for n in valid if _known_device(n, n.device, index, missing_is_error=True)])

    def neigh_del(self, entries: Iterable[Neighbour]) -> int:
        """Delete every entry; the number deleted now (entries of a gone device are gone)."""
        valid = [check.neighbour(n) for n in entries]
        index = self._device_indexes(n.device for n in valid)
        return self._run_batch("neighbour delete", ALREADY_GONE, [
            Request(n, RTM_DELNEIGH, DELETE, neigh_payload(index[n.device], n.ip, None))
            for n in valid if _known_device(n, n.device, index, missing_is_error=False)])

    def _device_indexes(self, devices: Iterable[str]) -> dict[str, int]:
        wanted = set(devices)
        if not wanted:
            return {}
        return {info.name: info.index for info in self.links().values() if info.name in wanted}

    def _batch_socket(self) -> BatchSocket:
        """The raw socket, opened on first use: most namespaces never need one."""
        with self._batch_lock:
            if self._batch is None:
                self._batch = BatchSocket(route_socket(namespace_ref(self.namespace)))
            return self._batch

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
        """A read; a kernel error becomes a DriverError."""
        try:
            return method(*args, **kwargs)
        except NetlinkError as exc:
            raise self._error(f"{getattr(method, '__name__', 'netlink')} {args}",
                              self.namespace, exc) from exc

    def _change(self, what: str, obj: object, tolerated: frozenset[int],
                method: Callable[..., object], *args: object, **kwargs: object) -> bool:
        """A write: True if done now, False if the kernel said it already was so."""
        try:
            method(*args, **kwargs)
        except NetlinkError as exc:
            if exc.code in tolerated:
                return False
            raise self._error(what, obj, exc) from exc
        return True

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


def _rule_spec(r: Rule) -> dict[str, object]:
    spec: dict[str, object] = {"priority": r.priority, "table": r.table,
                               "action": "FR_ACT_TO_TBL", "family": socket.AF_INET}
    if r.src is not None:
        net = check.network(r.src)
        spec.update(src=str(net.network_address), src_len=net.prefixlen,
                    family=socket.AF_INET if net.version == 4 else socket.AF_INET6)
    if r.iif is not None:
        spec["iifname"] = r.iif
    return spec
