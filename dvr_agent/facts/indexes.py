"""Router indexes of the facts: which hosted routers sit on a subnet, a network, an
external network, and which router key owns a device name. They are what lets one event
name the few keys it touches.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from dvr_agent import names, state
from dvr_agent.models import Router


class RouterIndex:
    def __init__(self) -> None:
        self.by_network: dict[str, set[str]] = defaultdict(set)
        self.by_subnet: dict[str, set[str]] = defaultdict(set)
        self.by_external: dict[str, set[str]] = defaultdict(set)
        self.with_fips: dict[str, set[str]] = defaultdict(set)  # E -> routers with FIPs here
        self.device_keys: dict[str, str] = {}

    def add(self, router: Router, networks: Iterable[str], devices: Iterable[str],
            has_fips: bool) -> None:
        for net in networks:
            self.by_network[net].add(router.id)
        for subnet in router.subnet_ids():
            self.by_subnet[subnet].add(router.id)
        if router.external_network_id:
            self.by_external[router.external_network_id].add(router.id)
            if has_fips:
                self.with_fips[router.external_network_id].add(router.id)
        key = state.router_key(router.id)
        for device in devices:
            self.device_keys[device] = key

    def remove(self, router: Router, networks: Iterable[str], devices: Iterable[str]) -> None:
        for net in networks:
            _discard(self.by_network, net, router.id)
        for subnet in router.subnet_ids():
            _discard(self.by_subnet, subnet, router.id)
        if router.external_network_id:
            _discard(self.by_external, router.external_network_id, router.id)
            _discard(self.with_fips, router.external_network_id, router.id)
        for device in devices:
            self.device_keys.pop(device, None)

    def clear(self) -> None:
        for index in (self.by_network, self.by_subnet, self.by_external, self.with_fips):
            index.clear()
        self.device_keys.clear()


def _discard(index: dict[str, set[str]], ident: str, router_id: str) -> None:
    members = index.get(ident)
    if members is not None:
        members.discard(router_id)
        if not members:
            del index[ident]


def router_devices(router: Router, gateway_here: bool) -> list[str]:
    """Every device name the router's key plugs on br-int (both veth naming variants)."""
    devices = [names.qr_device_name(p.id) for p in router.interfaces]
    if gateway_here and router.gw_port is not None:
        devices += [names.sg_device_name(p.id) for p in router.snat_interfaces]
        devices.append(names.qg_device_name(router.gw_port.id))
    return devices + [names.veth_host_name(d) for d in devices]
