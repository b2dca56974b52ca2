"""The notifications a change calls for, as data: who gets which method with which arguments.

Operations return these values; the notifier sends them after the transaction commits. As
data they can be checked without a broker, and the planning rule lives in one place:
``plan_router_notifications`` compares which hosts host each router before and after.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dvr_agent.rpc import protocol

Hosting = Mapping[str, frozenset[str]]  # router id -> hosts that host it


@dataclass(frozen=True)
class Notification:
    """One cast: to ``topic.host`` when ``host`` is set, else a fanout on ``topic``."""

    topic: str
    method: str
    version: str
    kwargs: dict[str, Any] = field(hash=False)
    host: str | None = None

    @property
    def fanout(self) -> bool:
        return self.host is None


def routers_updated(host: str, router_ids: Iterable[str], version: str) -> Notification:
    return Notification(protocol.TOPIC_L3_AGENT, "routers_updated", version,
                        {"routers": sorted(router_ids)}, host)


def router_removed_from_agent(host: str, router_id: str) -> Notification:
    return Notification(protocol.TOPIC_L3_AGENT, "router_removed_from_agent",
                        protocol.L3_AGENT_NOTIFY_VERSION, {"payload": {"router_id": router_id}},
                        host)


def router_deleted(router_id: str) -> Notification:
    return Notification(protocol.TOPIC_L3_AGENT, "router_deleted",
                        protocol.L3_AGENT_NOTIFY_VERSION, {"router_id": router_id})


def arp_entry(add: bool, router_id: str, ip_address: str, mac_address: str,
              subnet_id: str) -> Notification:
    table = {"ip_address": ip_address, "mac_address": mac_address, "subnet_id": subnet_id}
    return Notification(protocol.TOPIC_L3_AGENT, "add_arp_entry" if add else "del_arp_entry",
                        protocol.L3_AGENT_ARP_VERSION,
                        {"payload": {"router_id": router_id, "arp_table": table}})


def fipnamespace_delete_on_ext_net(network_id: str) -> Notification:
    return Notification(protocol.TOPIC_L3_AGENT, "fipnamespace_delete_on_ext_net",
                        protocol.L3_AGENT_NOTIFY_VERSION, {"ext_net_id": network_id})


def dvr_mac_address_update(dvr_macs: list[dict[str, str]]) -> Notification:
    return Notification(protocol.TOPIC_DVR_UPDATE, "dvr_mac_address_update",
                        protocol.AGENT_NOTIFIER_VERSION, {"dvr_macs": dvr_macs})


def tunnel_update(tunnel_ip: str, tunnel_type: str) -> Notification:
    return Notification(protocol.TOPIC_TUNNEL_UPDATE, "tunnel_update",
                        protocol.AGENT_NOTIFIER_VERSION,
                        {"tunnel_ip": tunnel_ip, "tunnel_type": tunnel_type})


def fdb_entries(add: bool, entries: dict[str, Any], host: str | None = None) -> Notification:
    return Notification(protocol.TOPIC_L2POP_UPDATE,
                        "add_fdb_entries" if add else "remove_fdb_entries",
                        protocol.AGENT_NOTIFIER_VERSION, {"fdb_entries": entries}, host)


def port_update(port_id: str, network_id: str, mac: str, host: str) -> Notification:
    """The OVS agents' ``port_update``: the host the port is bound to fetches its details
    again (allowed address pairs, a new binding)."""
    port = {"id": port_id, "network_id": network_id, "mac_address": mac,
            "binding:host_id": host}
    return Notification(protocol.TOPIC_PORT_UPDATE, "port_update",
                        protocol.AGENT_NOTIFIER_VERSION, {"port": port})


def port_delete(port_id: str) -> Notification:
    return Notification(protocol.TOPIC_PORT_DELETE, "port_delete",
                        protocol.AGENT_NOTIFIER_VERSION, {"port_id": port_id})


def network_delete(network_id: str) -> Notification:
    return Notification(protocol.TOPIC_NETWORK_DELETE, "network_delete",
                        protocol.AGENT_NOTIFIER_VERSION, {"network_id": network_id})


def plan_router_notifications(before: Hosting, after: Hosting, *, l3_hosts: Iterable[str],
                              interested: Mapping[str, Iterable[str]] | None = None,
                              version: str = protocol.L3_AGENT_ROUTERS_UPDATED_VERSION,
                              ) -> list[Notification]:
    """What the L3 agents must hear after routers' hosting changed from ``before`` to ``after``.

    - a host that no longer hosts R gets ``router_removed_from_agent`` (seed: the last VM
      that tied it to R is gone, or R lost its gateway and this was its SNAT host);
    - a host that newly hosts R gets ``routers_updated`` (seed: a VM arrived, an interface
      was added on its subnet, or it became R's SNAT host);
    - with ``interested`` None (a change to the router itself: interface, gateway) every host
      of R hears ``routers_updated``; otherwise only the hosts named for R do (a change that
      concerns one VM's host, such as a floating IP, as Neutron notifies).
    Only hosts with an L3 agent are told; ``routers_updated`` is grouped per host.
    """
    agents = set(l3_hosts)
    updated: dict[str, set[str]] = defaultdict(set)
    removed: list[Notification] = []
    for router_id in sorted(set(before) | set(after)):
        was, now = before.get(router_id, frozenset()), after.get(router_id, frozenset())
        removed += [router_removed_from_agent(h, router_id)
                    for h in sorted(was - now) if h in agents]
        targets = set(now) if interested is None else (
            set(now) & set(interested.get(router_id, ())) | (now - was))
        for host in targets & agents:
            updated[host].add(router_id)
    return [routers_updated(h, ids, version) for h, ids in sorted(updated.items())] + removed


@dataclass
class Outcome:
    """What a topology operation returns: its result, and what the agents must be told."""

    result: Any
    notifications: list[Notification] = field(default_factory=list)
