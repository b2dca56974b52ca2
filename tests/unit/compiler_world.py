"""Builders of neutron-format payloads for the compiler and facts tests.

Payloads are dicts exactly as neutron-server sends them (then parsed through the
models), so the tests exercise the same path the agent does.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from dvr_agent.facts import AgentConfig, Facts
from dvr_agent.models import HostMac, Router

CAPTURES = Path("/work/shared/reference/neutron-captures")
if not CAPTURES.exists():  # CI lays shared/ beside the clone
    CAPTURES = Path(__file__).resolve().parents[3] / "shared/reference/neutron-captures"

EXT_NET = "08d1f8c7-cfb0-491a-ad87-4eebf79ebffd"
EXT_SUBNET = "d794b32e-50b9-4e91-a8b4-0421d41685ae"


def uid(label: str) -> str:
    """A stable UUID for a label, so tests read as names and stay deterministic."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, label))


def captures(name: str) -> Any:
    return json.loads((CAPTURES / name).read_text())


def subnet(label: str, cidr: str, gateway: str | None) -> dict:
    return {"id": uid(label), "cidr": cidr, "gateway_ip": gateway, "ipv6_ra_mode": None}


def port(label: str, network: str, mac: str, ips: list[tuple[str, str, int]],
         owner: str = "compute:nova", subnets: list[dict] | None = None,
         host: str = "", mtu: int = 1450) -> dict:
    """ips: (subnet label, address, prefixlen)."""
    return {"id": uid(label), "network_id": uid(network), "mac_address": mac,
            "device_owner": owner, "device_id": uid(label + "-dev"),
            "fixed_ips": [{"subnet_id": uid(s), "ip_address": a, "prefixlen": p}
                          for s, a, p in ips],
            "subnets": subnets or [], "mtu": mtu, "binding:host_id": host,
            "allowed_address_pairs": [], "admin_state_up": True}


def router_interface(router: str, net: str, sub: str, cidr: str, gw: str, mac: str) -> dict:
    prefix = int(cidr.split("/")[1])
    return port(f"{router}-qr-{sub}", net, mac, [(sub, gw, prefix)],
                owner="network:router_interface_distributed",
                subnets=[subnet(sub, cidr, gw)])


def csnat_port(router: str, net: str, sub: str, cidr: str, gw: str, ip: str, mac: str,
               snat_host: str) -> dict:
    prefix = int(cidr.split("/")[1])
    return port(f"{router}-sg-{sub}", net, mac, [(sub, ip, prefix)],
                owner="network:router_centralized_snat", subnets=[subnet(sub, cidr, gw)],
                host=snat_host)


def gateway_port(router: str, ip: str, mac: str, snat_host: str) -> dict:
    p = port(f"{router}-qg", "ext", mac, [("ext-sub", ip, 24)],
             owner="network:router_gateway",
             subnets=[{"id": EXT_SUBNET, "cidr": "203.0.113.0/24", "gateway_ip": "203.0.113.1"}],
             host=snat_host, mtu=1500)
    p["network_id"] = EXT_NET
    p["fixed_ips"][0]["subnet_id"] = EXT_SUBNET
    return p


def agent_gateway_port(host: str, ip: str, mac: str) -> dict:
    p = gateway_port(f"fg-{host}", ip, mac, host)
    p["device_owner"] = "network:floatingip_agent_gateway"
    return p


def fip(label: str, router: str, floating: str, fixed: str, host: str,
        **extra: Any) -> dict:
    return {"id": uid(label), "floating_ip_address": floating, "fixed_ip_address": fixed,
            "floating_network_id": EXT_NET, "router_id": uid(router),
            "port_id": uid(label + "-port"), "host": host, "dest_host": None, **extra}


def router(label: str, interfaces: list[dict], *, gateway: dict | None = None,
           snat_host: str | None = None, snat_interfaces: list[dict] = (),
           fips: list[dict] = (), fip_agent_ports: list[dict] = ()) -> dict:
    d = {"id": uid(label), "admin_state_up": True, "distributed": True, "enable_snat": True,
         "_interfaces": list(interfaces), "routes": []}
    if gateway is not None:
        d.update(gw_port=gateway, gw_port_host=snat_host,
                 _snat_router_interfaces=list(snat_interfaces), _floatingips=list(fips),
                 _floatingip_agent_interfaces=list(fip_agent_ports))
    return d


def facts_for(host: str, mode: str = "dvr", **config: Any) -> Facts:
    cfg = AgentConfig(host=host, agent_mode=mode, local_ip=config.pop("local_ip", None),
                      bridge_mappings=(("physnet1", "br-ex"),), **config)
    facts = Facts(cfg)
    facts.set_dvr_macs([HostMac(host="network", mac="fa:16:3f:12:a3:38"),
                        HostMac(host="compute1", mac="fa:16:3f:b2:34:82"),
                        HostMac(host="compute2", mac="fa:16:3f:db:6f:73")])
    return facts


def parse_routers(dicts: list[dict]) -> list[Router]:
    return [Router.from_dict(d) for d in dicts]
