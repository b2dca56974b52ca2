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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

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

    def changes(self, current: dict[str, PortInfo], resync: bool) -> list[PortEvent]:
        """Events from the last reported set to ``current``; "resync" first after a reconnect."""
        events = [PortEvent("resync", None)] if resync else []
        for name, info in current.items():
            before = self._known.get(name)
            if before is None:
                events.append(PortEvent("added", info))
            elif before != info:
                events.append(PortEvent("updated", info))
        events += [PortEvent("removed", info) for name, info in self._known.items()
                   if name not in current]
        self._known = current
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
