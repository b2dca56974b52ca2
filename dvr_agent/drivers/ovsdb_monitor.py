"""Reading the OVSDB replica into values, and turning its changes into port events.

The python-ovs IDL keeps an in-memory replica of the tables we registered; these
functions copy rows out of it into frozen values (``state.Bridge``, ``PortInfo``) so that
nothing outside the IDL thread's lock ever holds a live Row.

Port events are level-triggered: after every change of the replica the set of VM-style
ports (Interface rows with ``external_ids:iface-id``) is compared with the set last
reported, and the difference becomes "added"/"updated"/"removed" events. A lost update,
two updates in one batch, or a whole reconnect therefore cannot make the caller miss a
port: after a reconnect the caller gets "resync" and then the difference, so a port added
while the server was down is reported like any other.

Every port is kept as a value in a ``PortCache``, re-read only when its rows changed
(``ReplicaIdl`` records them): reading a port out of python-ovs's rows costs ~0.17 ms, so
reading all 2,200 ports of a host with 1,000 routers took ~0.6 s, and a reconcile pass did
it every time (benchmarks/README.md, profile 4). Only a reload (a reconnect) reads all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import ovs.db.idl

from dvr_agent.state import Bridge

LOG = logging.getLogger(__name__)

IFACE_ID = "iface-id"

EventKind = Literal["added", "updated", "removed", "resync"]


@dataclass(frozen=True)
class PortInfo:
    """One Port of a bridge with its (first) Interface, as OVSDB has it now.

    ``external_ids`` are the Interface's (``iface-id``, ``attached-mac``, ``iface-status``,
    ``dvr-agent-key``), where Neutron and we put them; ``other_config`` is the Port's
    (Neutron's ``net_uuid``, ``segmentation_id``, ``network_type``, ``tag``). ``ofport`` is
    None until ovs-vswitchd assigned one, and when it could not (ofport -1).
    """

    bridge: str
    name: str
    type: str
    tag: int | None
    ofport: int | None
    options: Mapping[str, str]
    external_ids: Mapping[str, str]
    other_config: Mapping[str, str]


@dataclass(frozen=True)
class PortEvent:
    """A change of a port with ``external_ids:iface-id``; ``port`` is None for "resync"."""

    kind: EventKind
    port: PortInfo | None


PortCallback = Callable[[PortEvent], None]


def _single(column: list) -> int | None:
    return column[0] if column else None


def usable_ofport(iface) -> int | None:
    """The Interface's ofport, or None while unassigned or when vswitchd failed (-1)."""
    ofport = _single(iface.ofport)
    return ofport if ofport is not None and ofport > 0 else None


class ReplicaIdl(ovs.db.idl.Idl):
    """python-ovs's Idl, remembering the names of the ports whose rows changed.

    ``notify`` is python-ovs's hook, called from ``run()`` for every row the server
    creates, updates or deletes. A port and its single interface share one name (as
    ``ovs-vsctl add-port`` and we make them), so a name finds both.
    """

    def __init__(self, remote: str, schema_helper) -> None:
        super().__init__(remote, schema_helper)
        self.changed_ports: set[str] = set()
        self.port_uuids: dict[str, object] = {}  # Port name -> row uuid, kept by notify

    def notify(self, event, row, updates=None) -> None:
        table = row._table.name
        if table == "Port":
            if event == ovs.db.idl.ROW_DELETE:
                if self.port_uuids.get(row.name) == row.uuid:
                    del self.port_uuids[row.name]
            else:
                self.port_uuids[row.name] = row.uuid
            self.changed_ports.add(row.name)
        elif table == "Interface":
            self.changed_ports.add(row.name)

    def take_changed_ports(self) -> set[str]:
        changed, self.changed_ports = self.changed_ports, set()
        return changed


def bridge_of_ports(idl) -> dict[object, str]:
    """Port row uuid -> the name of the bridge it is on.

    Read from the Bridge rows' raw data (``Row._data``): through the ``ports`` attribute
    python-ovs turns every uuid into a Row, 58 ms for a bridge of 2,200 ports against
    0.1 ms, and this runs after every change of the replica.
    """
    return {atom.value: br.name for br in idl.tables["Bridge"].rows.values()
            for atom in br._data["ports"].values}


def read_bridges(idl) -> dict[str, Bridge]:
    return {row.name: Bridge(name=row.name, datapath_type=row.datapath_type,
                             fail_mode=_single(row.fail_mode) or "")
            for row in idl.tables["Bridge"].rows.values()}


def port_info(bridge: str, port, iface) -> PortInfo:
    return PortInfo(
        bridge=bridge,
        name=port.name,
        type=iface.type,
        tag=_single(port.tag),
        ofport=usable_ofport(iface),
        options=MappingProxyType(dict(iface.options)),
        external_ids=MappingProxyType(dict(iface.external_ids)),
        other_config=MappingProxyType(dict(port.other_config)),
    )


class PortCache:
    """Every port attached to a bridge, as a PortInfo, by name."""

    def __init__(self) -> None:
        self.ports: dict[str, PortInfo] = {}
        self._uuids: dict[str, object] = {}  # name -> Port row uuid, for what is cached

    def rebuild(self, idl: ReplicaIdl) -> set[str]:
        """Read every port (after a (re)load of the replica); the names that changed."""
        before = self.ports
        self.ports, self._uuids = {}, {}
        self.update(idl, set(idl.port_uuids))
        return {n for n in set(before) | set(self.ports) if before.get(n) != self.ports.get(n)}

    def update(self, idl: ReplicaIdl, names: set[str]) -> set[str]:
        """Re-read the ports ``names`` (whose rows changed) and those that joined or left
        a bridge without a change of their own; the names whose PortInfo changed."""
        bridge_of = bridge_of_ports(idl)
        names = names | {n for n, u in self._uuids.items()  # left or changed bridge
                         if bridge_of.get(u) != self.ports[n].bridge}
        joined = bridge_of.keys() - set(self._uuids.values())
        if joined:
            names |= {n for n, u in idl.port_uuids.items() if u in joined}
        changed = set()
        rows = idl.tables["Port"].rows
        for name in names:
            uuid = idl.port_uuids.get(name)
            row = rows.get(uuid)
            if row is None or uuid not in bridge_of or not row.interfaces:
                info = None
            else:
                info = port_info(bridge_of[uuid], row, row.interfaces[0])
            if info is None:
                self._uuids.pop(name, None)
                if self.ports.pop(name, None) is not None:
                    changed.add(name)
            else:
                self._uuids[name] = uuid
                if self.ports.get(name) != info:
                    self.ports[name] = info
                    changed.add(name)
        return changed

    def vm_ports(self) -> dict[str, PortInfo]:
        """The ports the agent watches: those whose Interface has ``external_ids:iface-id``."""
        return {n: p for n, p in self.ports.items() if IFACE_ID in p.external_ids}


class PortWatch:
    """The last reported set of VM ports, and the events that bring a new set up to date."""

    def __init__(self) -> None:
        self.callbacks: list[PortCallback] = []
        self._known: dict[str, PortInfo] = {}

    def reset(self, current: dict[str, PortInfo]) -> None:
        """Take ``current`` as already reported (a new watcher reads ``ports()`` itself)."""
        self._known = current

    def changes(self, cache: PortCache, names: set[str], resync: bool) -> list[PortEvent]:
        """Events that bring the last reported set up to date for the ports ``names`` (those
        whose values changed); "resync" first after a reconnect."""
        events = [PortEvent("resync", None)] if resync else []
        current = {n: p for n in names
                   if (p := cache.ports.get(n)) is not None and IFACE_ID in p.external_ids}
        for name in sorted(names):
            before, now = self._known.get(name), current.get(name)
            if now is None and before is not None:
                events.append(PortEvent("removed", before))
                del self._known[name]
            elif now is not None and now != before:
                events.append(PortEvent("added" if before is None else "updated", now))
                self._known[name] = now
        return events

    def dispatch(self, events: list[PortEvent]) -> None:
        """Hand events to every callback; a failing callback is logged and the others still run
        (an exception must not end the thread that keeps the replica)."""
        for event in events:
            for callback in list(self.callbacks):
                try:
                    callback(event)
                except Exception:
                    LOG.exception("port event callback %r failed on %s", callback, event)
