"""Other hosts as the agent sees them: DVR host MACs, tunnel peers, network segments, and
the l2population forwarding entries that say which host has which MAC.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from dvr_agent.models import fields as f
from dvr_agent.models.errors import PayloadError, at

FLOODING_MAC = "00:00:00:00:00:00"  # l2pop's "flood to this host" entry
NETWORK_TYPES = frozenset({"vxlan", "gre", "geneve", "vlan", "flat", "local"})
TUNNEL_TYPES = frozenset({"vxlan", "gre", "geneve"})
_SEGMENT_RANGE = {"vxlan": (1, 2**24 - 1), "geneve": (1, 2**24 - 1), "gre": (1, 2**32 - 1),
                  "vlan": (1, 4094)}


@dataclass(frozen=True, kw_only=True, slots=True)
class HostMac:
    """A host's DVR MAC (``dvr_host_macs``); the server sends ``FA-16-3F-..``."""

    host: str
    mac: str

    @classmethod
    def from_dict(cls, d: Any) -> HostMac:
        return cls(host=f.field(d, "host", f.host),
                   mac=f.field(d, "mac_address", f.unicast_mac))


@dataclass(frozen=True, kw_only=True, slots=True)
class TunnelPeer:
    """A tunnel endpoint (``tunnel_sync`` reply entry or ``tunnel_update`` args)."""

    ip: ipaddress.IPv4Address
    host: str | None = None
    udp_port: int = 4789

    @classmethod
    def from_dict(cls, d: Any) -> TunnelPeer:
        """A ``tunnel_sync`` entry: ``{"host", "ip_address", "udp_port"}``."""
        return cls(ip=f.field(d, "ip_address", f.ipv4),
                   host=f.field(d, "host", f.optional_host, default=None),
                   udp_port=f.field(d, "udp_port", f.integer(1, 65535), default=4789))

    @classmethod
    def from_update(cls, d: Any) -> TunnelPeer:
        """``tunnel_update`` / ``tunnel_delete`` kwargs: ``{"tunnel_ip", "tunnel_type"}``."""
        tunnel_type = f.field(d, "tunnel_type", f.text)
        if tunnel_type not in TUNNEL_TYPES:
            raise PayloadError("tunnel_type", tunnel_type, "not a tunnel type")
        return cls(ip=f.field(d, "tunnel_ip", f.ipv4))


def tunnel_sync_reply(d: Any) -> tuple[TunnelPeer, ...]:
    """The ``tunnel_sync`` reply ``{"tunnels": [...]}`` as peers."""
    return f.field(d, "tunnels", f.items(TunnelPeer.from_dict))


@dataclass(frozen=True, kw_only=True, slots=True)
class Segment:
    """How a network is carried: type, VNI or VLAN id, physnet, MTU."""

    network_type: str
    segmentation_id: int | None = None
    physical_network: str | None = None
    mtu: int | None = None

    def __post_init__(self) -> None:
        if self.network_type not in NETWORK_TYPES:
            raise PayloadError("network_type", self.network_type, "unknown network type")
        bounds = _SEGMENT_RANGE.get(self.network_type)
        if bounds is None:
            if self.network_type == "flat" and self.physical_network is None:
                raise PayloadError("physical_network", None, "a flat network needs one")
            return
        lo, hi = bounds
        if self.segmentation_id is None or not lo <= self.segmentation_id <= hi:
            raise PayloadError("segmentation_id", self.segmentation_id,
                               f"out of range {lo}..{hi} for {self.network_type}")

    @classmethod
    def from_dict(cls, d: Any) -> Segment:
        """From device details or ``port_update`` kwargs (same key names)."""
        return cls(network_type=f.field(d, "network_type", f.text),
                   segmentation_id=f.field(d, "segmentation_id", f.integer(0, 2**32 - 1),
                                           default=None),
                   physical_network=f.field(d, "physical_network", f.text, default=None),
                   mtu=f.field(d, "mtu", f.integer(68, 65535), default=None))


@dataclass(frozen=True, kw_only=True, slots=True)
class FdbNetwork:
    """One network of an l2pop FDB payload: per tunnel endpoint, its (MAC, IP) entries.

    The entry ``(00:00:00:00:00:00, 0.0.0.0)`` means "flood this network's broadcasts
    to that endpoint".
    """

    network_id: str
    segment: Segment
    ports: tuple[tuple[ipaddress.IPv4Address, tuple[tuple[str, f.IPAddress], ...]], ...]

    @classmethod
    def from_item(cls, network_id: Any, d: Any) -> FdbNetwork:
        segment = Segment(network_type=f.field(d, "network_type", f.text),
                          segmentation_id=f.field(d, "segment_id", f.integer(0, 2**32 - 1),
                                                  default=None),
                          physical_network=f.field(d, "physical_network", f.text,
                                                   default=None))
        raw_ports = f.field(d, "ports", f.mapping)
        ports = []
        with at("ports"):
            for endpoint, entries in sorted(raw_ports.items(), key=lambda kv: str(kv[0])):
                with at(str(endpoint)[:45]):
                    ports.append((f.ipv4(endpoint), f.items(_fdb_entry)(entries)))
        return cls(network_id=f.uuid(network_id), segment=segment, ports=tuple(ports))


def _fdb_entry(value: Any) -> tuple[str, f.IPAddress]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise PayloadError("", value, "expected [mac, ip]")
    with at(0):
        mac = f.mac(value[0])
    with at(1):
        address = f.ip(value[1])
    return mac, address


def fdb_entries(d: Any) -> tuple[FdbNetwork, ...]:
    """``add_fdb_entries`` / ``remove_fdb_entries`` kwargs ``{"fdb_entries": {net: ...}}``."""
    entries = f.field(d, "fdb_entries", f.mapping)
    out = []
    with at("fdb_entries"):
        for network_id, body in sorted(entries.items(), key=lambda kv: str(kv[0])):
            with at(str(network_id)[:36]):
                out.append(FdbNetwork.from_item(network_id, body))
    return tuple(out)
