"""Typed, immutable facts parsed from neutron-format payloads; one error type.

Everything the agent learns from the server or OVSDB passes through here once and comes
out canonical (UUIDs lower case, MACs ``fa:16:3e:..``, addresses as ``ipaddress``
values), or is rejected with a PayloadError naming the field.
"""

from dvr_agent.models.errors import PayloadError
from dvr_agent.models.hosts import (
    FLOODING_MAC,
    FdbNetwork,
    HostMac,
    Segment,
    TunnelPeer,
    fdb_entries,
    tunnel_sync_reply,
)
from dvr_agent.models.notifications import (
    ArpEntry,
    dvr_macs,
    fip_namespace_network,
    removed_router_id,
    router_ids,
)
from dvr_agent.models.ports import (
    AddressPair,
    DeviceDetails,
    DevicesDetails,
    FixedIp,
    Port,
    Subnet,
)
from dvr_agent.models.routers import ExtraRoute, FloatingIp, Router
from dvr_agent.models.vifs import LocalVif

__all__ = [
    "FLOODING_MAC",
    "AddressPair",
    "ArpEntry",
    "DeviceDetails",
    "DevicesDetails",
    "ExtraRoute",
    "FdbNetwork",
    "FixedIp",
    "FloatingIp",
    "HostMac",
    "LocalVif",
    "PayloadError",
    "Port",
    "Router",
    "Segment",
    "Subnet",
    "TunnelPeer",
    "dvr_macs",
    "fdb_entries",
    "fip_namespace_network",
    "removed_router_id",
    "router_ids",
    "tunnel_sync_reply",
]
