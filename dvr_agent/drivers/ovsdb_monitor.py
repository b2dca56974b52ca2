"""Reading the OVSDB replica into values, and turning its changes into port events.

The python-ovs IDL keeps an in-memory replica of the tables we registered; these
functions copy rows out of it into frozen values (``state.Bridge``, ``PortInfo``) so that
nothing outside the IDL thread's lock ever holds a live Row.

Port events are level-triggered: after every change of the replica the set of VM-style
ports (Interface rows with ``external_ids:iface-id``) is compared with the set last
reported, and the difference becomes "added"/"updated"/"removed" events. A lost update,
two updates in one batch, or a whole reconnect therefore cannot make the caller miss a
port: after a reconnect the caller gets "resync" and then the difference, so a port added
while the server was down is reported like any other. Between reconnects only the ports
whose rows changed are looked at (``ReplicaIdl`` records them), because reading all of
1,000 ports into values costs ~0.1 s, too much to pay on every update of one port.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
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


def read_bridges(idl) -> dict[str, Bridge]:
    return {row.name: Bridge(name=row.name, datapath_type=row.datapath_type,
                             fail_mode=_single(row.fail_mode) or "")
            for row in idl.tables["Bridge"].rows.values()}


def iter_ports(idl, bridge: str | None = None) -> Iterator[tuple[str, object, object]]:
    """(bridge name, Port row, Interface row) of every port attached to a bridge."""
    for br in idl.tables["Bridge"].rows.values():
        if bridge is not None and br.name != bridge:
            continue
        for port in br.ports:
            if port.interfaces:
                yield br.name, port, port.interfaces[0]


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


def read_ports(idl, bridge: str | None = None) -> dict[str, PortInfo]:
    return {port.name: port_info(br, port, iface) for br, port, iface in iter_ports(idl, bridge)}


def read_vm_port(idl: ReplicaIdl, name: str, bridge_of: Mapping) -> PortInfo | None:
    """Port ``name`` if it is on a bridge and has ``external_ids:iface-id``, else None."""
    port = idl.tables["Port"].rows.get(idl.port_uuids.get(name))
    if port is None or not port.interfaces or port.uuid not in bridge_of:
        return None
    iface = port.interfaces[0]
    if IFACE_ID not in iface.external_ids:
        return None
    return port_info(bridge_of[port.uuid], port, iface)


def read_vm_ports(idl) -> dict[str, PortInfo]:
    """The ports the agent watches: those whose Interface has ``external_ids:iface-id``."""
    return {port.name: port_info(br, port, iface) for br, port, iface in iter_ports(idl)
            if IFACE_ID in iface.external_ids}


class PortWatch:
    """The last reported set of VM ports, and the events that bring a new set up to date."""

    def __init__(self) -> None:
        self.callbacks: list[PortCallback] = []
        self._known: dict[str, PortInfo] = {}

    def reset(self, current: dict[str, PortInfo]) -> None:
        """Take ``current`` as already reported (a new watcher reads ``ports()`` itself)."""
        self._known = current

    def changes(self, idl: ReplicaIdl, names: set[str] | None,
                resync: bool) -> list[PortEvent]:
        """Events that bring the last reported set up to date: for the ports ``names``, or
        for all ports when ``names`` is None; "resync" first after a reconnect."""
        events = [PortEvent("resync", None)] if resync else []
        if names is None:
            current = read_vm_ports(idl)
            names = set(current) | set(self._known)
        else:
            bridge_of = {port.uuid: br.name for br in idl.tables["Bridge"].rows.values()
                         for port in br.ports}
            current = {name: read_vm_port(idl, name, bridge_of) for name in names}
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
