"""Server -> agent notifications whose payloads carry facts (not just "go and sync").

Each parser takes the notification's kwargs exactly as oslo.messaging hands them to the
endpoint, so the RPC layer does ``ArpEntry.from_kwargs(kwargs)`` and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dvr_agent.models import fields as f
from dvr_agent.models.errors import PayloadError, at
from dvr_agent.models.hosts import HostMac


@dataclass(frozen=True, kw_only=True, slots=True)
class ArpEntry:
    """``add_arp_entry`` / ``del_arp_entry``: one neighbour of one router's subnet."""

    router_id: str
    subnet_id: str
    ip: f.IPAddress
    mac: str

    @classmethod
    def from_kwargs(cls, kwargs: Any) -> ArpEntry:
        payload = f.field(kwargs, "payload", f.mapping)
        with at("payload"):
            table = f.field(payload, "arp_table", f.mapping)
            with at("arp_table"):
                ip = f.field(table, "ip_address", f.ip)
                mac = f.field(table, "mac_address", f.unicast_mac)
                subnet_id = f.field(table, "subnet_id", f.uuid)
            return cls(router_id=f.field(payload, "router_id", f.uuid),
                       subnet_id=subnet_id, ip=ip, mac=mac)


def dvr_macs(kwargs: Any) -> tuple[HostMac, ...]:
    """``dvr_mac_address_update(dvr_macs=[...])``: the complete list, own host included."""
    macs = f.field(kwargs, "dvr_macs", f.items(HostMac.from_dict))
    seen: dict[str, str] = {}
    for i, entry in enumerate(macs):
        if seen.setdefault(entry.host, entry.mac) != entry.mac:
            raise PayloadError(f"dvr_macs[{i}].host", entry.host, "listed twice")
    return macs


def router_ids(kwargs: Any) -> tuple[str, ...]:
    """``routers_updated(routers=[...])``: ids, or router dicts from old senders."""
    def one(value: Any) -> str:
        if isinstance(value, dict):
            return f.field(value, "id", f.uuid)
        return f.uuid(value)
    return f.field(kwargs, "routers", f.items(one))


def removed_router_id(kwargs: Any) -> str:
    """``router_removed_from_agent(payload={"router_id"})`` or ``router_deleted(router_id)``."""
    if "payload" in f.mapping(kwargs):
        with at("payload"):
            return f.field(kwargs["payload"], "router_id", f.uuid)
    return f.field(kwargs, "router_id", f.uuid)


def fip_namespace_network(kwargs: Any) -> str:
    """``fipnamespace_delete_on_ext_net(ext_net_id)``."""
    return f.field(kwargs, "ext_net_id", f.uuid)
