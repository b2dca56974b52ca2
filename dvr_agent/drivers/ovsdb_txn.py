"""One OVSDB write of the driver: checked input, then the transaction that makes it so.

``Change`` is what ``Ovsdb.apply`` was asked for, checked before anything is sent
(``InvalidInput`` names the bad value: python-ovs itself only *logs* a value that does
not fit a column and drops the write). ``build`` turns it into the difference from the
replica: adding what exists makes it match, columns that already match are not written
(an unchanged write would still make ovs-vswitchd reconfigure), and a port that must
change is changed in place, never deleted and re-created.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import ovs.db.idl

from dvr_agent import names
from dvr_agent.drivers.errors import DriverError, InvalidInput
from dvr_agent.state import Bridge, OvsPort, VifTag

Txn = ovs.db.idl.Transaction

PORT_TYPES = frozenset({"", "system", "internal", "patch", "vxlan", "gre", "geneve"})
FAIL_MODES = frozenset({"", "secure", "standalone"})
# Bundles need OpenFlow 1.4, dump-flows reads with 1.0: a bridge of ours speaks both.
OF_PROTOCOLS = ("OpenFlow10", "OpenFlow11", "OpenFlow12", "OpenFlow13", "OpenFlow14")
MAX_OFPORT = 0xFEFF  # OFPP_MAX


@dataclass(frozen=True)
class Change:
    """One checked write: every name, tag and map is valid, no port is named twice."""

    add_bridges: tuple[Bridge, ...]
    del_bridges: tuple[str, ...]
    add_ports: tuple[OvsPort, ...]
    update_ports: tuple[OvsPort, ...]
    del_ports: tuple[str, ...]
    vif_tags: tuple[VifTag, ...]

    @classmethod
    def validated(cls, **parts: Iterable) -> Change:
        """The change, or InvalidInput naming the first bad value (before anything is sent)."""
        change = cls(**{k: tuple(v) for k, v in parts.items()})
        for b in change.add_bridges:
            _check_bridge(b)
        for name in change.del_bridges:
            _check_name("bridge", name)
        for p in (*change.add_ports, *change.update_ports):
            _check_port(p)
        for name in change.del_ports:
            _check_name("port", name)
        for v in change.vif_tags:
            _check_name("VIF port", v.port)
            _check_tag(v.port, v.tag)
            if not isinstance(v.network_id, str) or not v.network_id:
                raise InvalidInput(f"VIF port {v.port}: network id {v.network_id!r} "
                                   "is not a string", obj=v)
        seen: set[str] = set()
        for name in (*(p.name for p in change.add_ports + change.update_ports),
                     *change.del_ports, *(v.port for v in change.vif_tags)):
            if name in seen:
                raise InvalidInput(f"port {name} appears twice in one change", obj=name)
            seen.add(name)
        return change

    @property
    def empty(self) -> bool:
        return not any((self.add_bridges, self.del_bridges, self.add_ports,
                        self.update_ports, self.del_ports, self.vif_tags))

    @property
    def port_names(self) -> frozenset[str]:
        """Interfaces that must have an ofport when the change is done."""
        return frozenset(p.name for p in self.add_ports + self.update_ports)

    def __str__(self) -> str:
        parts = [_summary("add bridge", [b.name for b in self.add_bridges]),
                 _summary("delete bridge", self.del_bridges),
                 _summary("add port", [p.name for p in self.add_ports]),
                 _summary("update port", [p.name for p in self.update_ports]),
                 _summary("delete port", self.del_ports),
                 _summary("tag VIF", [v.port for v in self.vif_tags])]
        return "; ".join(p for p in parts if p)


def _summary(verb: str, items: Iterable[str]) -> str:
    items = list(items)
    if not items:
        return ""
    shown = ", ".join(items[:3]) + (f", ... ({len(items)})" if len(items) > 3 else "")
    return f"{verb} {shown}"


def _check_name(kind: str, name: object) -> None:
    if not isinstance(name, str) or not names.valid_device_name(name):
        raise InvalidInput(f"{kind} {name!r}: not a device name (1 to 15 characters, "
                           "no '/', ':' or blanks)", obj=name)


def _check_tag(what: str, tag: object) -> None:
    if isinstance(tag, bool) or not isinstance(tag, int) or not 1 <= tag <= 4094:
        raise InvalidInput(f"{what}: VLAN tag {tag!r} is not in 1..4094", obj=what)


def _check_map(what: str, column: str, pairs: object) -> None:
    try:
        items = list(pairs)  # type: ignore[call-overload]
    except TypeError:
        items = [pairs]
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                and item[0] and isinstance(item[1], str)):
            raise InvalidInput(f"{what}: {column} entry {item!r} is not a (key, value) pair "
                               "of strings", obj=what)


def _check_bridge(bridge: Bridge) -> None:
    _check_name("bridge", bridge.name)
    if not isinstance(bridge.datapath_type, str):
        raise InvalidInput(f"bridge {bridge.name}: datapath_type {bridge.datapath_type!r} "
                           "is not a string", obj=bridge)
    if bridge.fail_mode not in FAIL_MODES:
        raise InvalidInput(f"bridge {bridge.name}: fail_mode {bridge.fail_mode!r} is not one "
                           f"of {sorted(FAIL_MODES)}", obj=bridge)


def _check_port(port: OvsPort) -> None:
    _check_name("port", port.name)
    _check_name(f"bridge of port {port.name}:", port.bridge)
    if port.type not in PORT_TYPES:
        raise InvalidInput(f"port {port.name}: type {port.type!r} is not one of "
                           f"{sorted(PORT_TYPES)}", obj=port)
    if port.tag is not None:
        _check_tag(f"port {port.name}", port.tag)
    request = port.ofport_request
    if request is not None and (isinstance(request, bool) or not isinstance(request, int)
                                or not 1 <= request <= MAX_OFPORT):
        raise InvalidInput(f"port {port.name}: ofport_request {request!r} is not in "
                           f"1..{MAX_OFPORT}", obj=port)
    for column in ("options", "external_ids", "other_config"):
        _check_map(f"port {port.name}", column, getattr(port, column))


def _set(row, column: str, value: object) -> bool:
    """Write ``column`` only if it differs: an unchanged write would still make vswitchd
    reconfigure, and an apply of what exists must change nothing."""
    try:
        if getattr(row, column) == value:
            return False
    except AttributeError:  # a row inserted by this transaction has no value yet
        pass
    setattr(row, column, value)
    return True


def _set_port(port, iface, want: OvsPort) -> bool:
    changed = _set(iface, "type", want.type)
    changed |= _set(iface, "options", dict(want.options))
    changed |= _set(iface, "external_ids", dict(want.external_ids))
    changed |= _set(iface, "ofport_request",
                    [want.ofport_request] if want.ofport_request is not None else [])
    changed |= _set(port, "tag", [want.tag] if want.tag is not None else [])
    changed |= _set(port, "other_config", dict(want.other_config))
    return changed


def build(idl, txn: Txn, change: Change) -> bool:
    """Put ``change`` into ``txn`` as the difference from the replica; True if it changes
    anything. Raises DriverError naming the row when the change cannot be made."""
    edit = _Edit(idl, txn)
    for bridge in change.add_bridges:
        edit.ensure_bridge(bridge)
    dying = frozenset(change.del_bridges)
    for name in change.del_ports:
        edit.delete_port(name, dying)
    for name in change.del_bridges:
        edit.delete_bridge(name)
    for port in change.add_ports:
        edit.ensure_port(port)
    for port in change.update_ports:
        edit.update_port(port)
    for vif in change.vif_tags:
        edit.tag_vif(vif)
    return edit.finish()


class _Edit:
    """The rows of one transaction, looked up by name once, and whether anything changed."""

    def __init__(self, idl, txn: Txn) -> None:
        self.idl, self.txn = idl, txn
        self.root = next(iter(idl.tables["Open_vSwitch"].rows.values()), None)
        if self.root is None:
            raise DriverError("OVSDB has no Open_vSwitch row (was `ovs-vsctl init` run?)")
        self.bridges = {row.name: row for row in idl.tables["Bridge"].rows.values()}
        self.ports = {row.name: row for row in idl.tables["Port"].rows.values()}
        self.owner = {port.uuid: br.name for br in self.bridges.values() for port in br.ports}
        # Ports of bridges this transaction inserts: written as one list at the end, since
        # a mutation ("add to set") of a row that does not exist yet cannot be sent.
        self.new_ports: dict[str, list] = {}
        self.changed = False

    def ensure_bridge(self, want: Bridge) -> None:
        row = self.bridges.get(want.name)
        if row is None:
            row = self.txn.insert(self.idl.tables["Bridge"])
            row.name = want.name
            local = self._insert_port(OvsPort(bridge=want.name, name=want.name,
                                              type="internal"))
            self.new_ports[want.name] = [local.uuid]
            row.protocols = list(OF_PROTOCOLS)
            self.root.addvalue("bridges", row.uuid)
            self.bridges[want.name] = row
            self.changed = True
        else:
            self.changed |= _set(row, "protocols", sorted(set(row.protocols) | set(OF_PROTOCOLS)))
        self.changed |= _set(row, "datapath_type", want.datapath_type)
        self.changed |= _set(row, "fail_mode", [want.fail_mode] if want.fail_mode else [])

    def delete_port(self, name: str, dying: frozenset[str]) -> None:
        """Delete port ``name`` if it exists; its interface goes with it (garbage collected)."""
        port = self.ports.pop(name, None)
        if port is None or self.owner.get(port.uuid) in dying:
            return  # gone already, or it goes with its bridge
        if port.uuid in self.owner:
            self.bridges[self.owner[port.uuid]].delvalue("ports", port.uuid)
        port.delete()
        self.changed = True

    def delete_bridge(self, name: str) -> None:
        row = self.bridges.pop(name, None)
        if row is not None:
            self.root.delvalue("bridges", row.uuid)
            row.delete()
            self.changed = True

    def ensure_port(self, want: OvsPort) -> None:
        port = self.ports.get(want.name)
        if port is not None:
            self.update_port(want)
            return
        if want.bridge not in self.bridges:
            raise DriverError(f"port {want.name}: bridge {want.bridge} does not exist",
                              obj=want)
        port = self._insert_port(want)
        if want.bridge in self.new_ports:
            self.new_ports[want.bridge].append(port.uuid)
        else:
            self.bridges[want.bridge].addvalue("ports", port.uuid)
        self.changed = True

    def update_port(self, want: OvsPort) -> None:
        """Make an existing port match ``want`` in place (same rows, same ofport)."""
        port = self.ports.get(want.name)
        if port is None:
            raise DriverError(f"port {want.name}: does not exist, cannot update it", obj=want)
        bridge = self.owner.get(port.uuid)
        if bridge != want.bridge:
            raise DriverError(f"port {want.name}: is on bridge {bridge}, not {want.bridge} "
                              "(delete it first to move it)", obj=want)
        if len(port.interfaces) != 1:
            raise DriverError(f"port {want.name}: has {len(port.interfaces)} interfaces, "
                              "not one", obj=want)
        self.changed |= _set_port(port, port.interfaces[0], want)

    def tag_vif(self, vif: VifTag) -> None:
        """Tag a port somebody else plugged; add Neutron's ``net_uuid``, keep their keys."""
        port = self.ports.get(vif.port)
        if port is None:
            raise DriverError(f"VIF port {vif.port}: does not exist (we never create it)",
                              obj=vif)
        self.changed |= _set(port, "tag", [vif.tag])
        if port.other_config.get("net_uuid") != vif.network_id:
            port.setkey("other_config", "net_uuid", vif.network_id)
            self.changed = True

    def finish(self) -> bool:
        for name, uuids in self.new_ports.items():
            self.bridges[name].ports = uuids
        return self.changed

    def _insert_port(self, want: OvsPort):
        iface = self.txn.insert(self.idl.tables["Interface"])
        iface.name = want.name
        port = self.txn.insert(self.idl.tables["Port"])
        port.name = want.name
        port.interfaces = [iface.uuid]
        _set_port(port, iface, want)
        return port
