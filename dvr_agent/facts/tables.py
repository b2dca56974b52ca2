"""Two tables the facts keep for the compiler: ARP entries per subnet, and the L2 view of
other hosts (tunnel peers and l2population forwarding entries).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from dvr_agent.models import Port, TunnelPeer
from dvr_agent.models.fields import IPAddress
from dvr_agent.rpc import protocol

ArpTable = Mapping[str, tuple[IPAddress, str]]  # str(ip) -> (ip, mac)


def arp_table_from_ports(subnet_id: str, ports: Iterable[Port]) -> dict[str, tuple[IPAddress,
                                                                                  str]]:
    """The neighbours of a subnet, as Neutron's L3 agent derives them from its ports.

    Router-interface owners are skipped (their IP is the gateway, present on every host);
    single-host allowed address pairs of the same IP version count too, with the pair's
    MAC if it has one (release note use-correct-aap-mac-for-dvr-arp). Ports are taken in
    id order and a fixed IP beats an address pair, so the table never depends on the
    order the server listed them in.
    """
    table: dict[str, tuple[IPAddress, str]] = {}
    pairs: list[tuple[IPAddress, str]] = []
    for port in sorted(ports, key=lambda p: p.id):
        if port.device_owner in protocol.ROUTER_INTERFACE_OWNERS:
            continue
        versions = set()
        for fixed in port.fixed_ips:
            if fixed.subnet_id == subnet_id:
                table.setdefault(str(fixed.ip), (fixed.ip, port.mac))
                versions.add(fixed.ip.version)
        for pair in port.allowed_address_pairs:
            host = pair.single_host
            if host is not None and host.version in versions:
                pairs.append((host, pair.mac or port.mac))
    for host, mac in pairs:
        table.setdefault(str(host), (host, mac))
    return table


class ArpTables:
    """subnet -> its neighbour table; ``known`` once filled from ``get_ports_by_subnet``.

    ``add_arp_entry`` before the table is filled is kept (Neutron caches such entries
    as ``_pending_arp_set`` and replays them after the fill).
    """

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, tuple[IPAddress, str]]] = {}
        self._filled: set[str] = set()
        self._expired: set[str] = set()  # filled, but to be fetched again

    def known(self, subnet_id: str) -> bool:
        return subnet_id in self._filled and subnet_id not in self._expired

    def expire_all(self) -> None:
        """After an outage, ARP notifications may have been lost: every table is fetched
        again, and the answer replaces it whole (the entries keep working meanwhile)."""
        self._expired = set(self._filled)

    def entries(self, subnet_id: str) -> ArpTable:
        return self._tables.get(subnet_id, {})

    def replace(self, subnet_id: str, ports: Iterable[Port]) -> bool:
        new = arp_table_from_ports(subnet_id, ports)
        if subnet_id in self._filled:
            changed = self._tables.get(subnet_id) != new
        else:
            new = {**self._tables.get(subnet_id, {}), **new}
            changed = True
        self._tables[subnet_id] = new
        self._filled.add(subnet_id)
        self._expired.discard(subnet_id)
        return changed

    def add(self, subnet_id: str, ip: IPAddress, mac: str) -> bool:
        table = self._tables.setdefault(subnet_id, {})
        if table.get(str(ip)) == (ip, mac):
            return False
        table[str(ip)] = (ip, mac)
        return True

    def remove(self, subnet_id: str, ip: IPAddress, mac: str) -> bool:
        """Deletes only the entry with this MAC: a stale delete must not drop a new one."""
        table = self._tables.get(subnet_id, {})
        if table.get(str(ip)) != (ip, mac):
            return False
        del table[str(ip)]
        return True

    def drop_unused(self, subnet_ids: Iterable[str], users: Mapping[str, set[str]]) -> None:
        for subnet_id in subnet_ids:
            if not users.get(subnet_id):
                self._tables.pop(subnet_id, None)
                self._filled.discard(subnet_id)
                self._expired.discard(subnet_id)


class L2Tables:
    """Tunnel peers (from ``tunnel_sync``/``tunnel_update``)."""

    def __init__(self) -> None:
        self.peers: dict[ipaddress.IPv4Address, TunnelPeer] = {}
