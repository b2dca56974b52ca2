"""The heartbeats: what Neutron's L3 agent and OVS agent each report, built by pure functions.

One dvr-agent does the work of both Neutron agents on a host, so it reports as both, in
their exact shape: the server's scheduler reads ``configurations.agent_mode`` of the L3
agent, l2population reads ``tunneling_ip`` of the OVS agent (captures in
../shared/reference/neutron-captures/agent_rpc_calls.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dvr_agent.rpc import protocol

# Object versions Neutron 29's OVS agent announces on its first report.
RESOURCE_VERSIONS = {
    "AddressGroup": "1.2", "Agent": "1.1", "ConntrackHelper": "1.0", "LocalIPAssociation": "1.0",
    "Log": "1.0", "NDPProxy": "1.0", "Network": "1.3", "Port": "1.11", "PortForwarding": "1.3",
    "QosPolicy": "1.10", "SecurityGroup": "1.6", "SecurityGroupRule": "1.3", "SubPort": "1.0",
    "Subnet": "1.2", "Trunk": "1.1",
}


@dataclass(frozen=True)
class Counts:
    """What the L3 agent reports it serves."""

    routers: int = 0
    ex_gw_ports: int = 0
    interfaces: int = 0
    floating_ips: int = 0
    devices: int = 0


def l3_agent_state(host: str, agent_mode: str, availability_zone: str, counts: Counts,
                   start_flag: bool) -> dict[str, Any]:
    state: dict[str, Any] = {
        "agent_type": protocol.L3_AGENT_TYPE,
        "availability_zone": availability_zone,
        "binary": protocol.L3_AGENT_BINARY,
        "configurations": {
            "agent_mode": agent_mode,
            "ex_gw_ports": counts.ex_gw_ports,
            "extensions": [],
            "floating_ips": counts.floating_ips,
            "handle_internal_only_routers": True,
            "interface_driver": "openvswitch",
            "interfaces": counts.interfaces,
            "log_agent_heartbeats": False,
            "routers": counts.routers,
        },
        "host": host,
        "topic": protocol.TOPIC_L3_AGENT,
    }
    if start_flag:
        state["start_flag"] = True
    return state


def ovs_agent_state(host: str, tunneling_ip: str, bridge_mappings: dict[str, str],
                    integration_bridge: str, datapath_type: str, devices: int,
                    start_flag: bool) -> dict[str, Any]:
    state: dict[str, Any] = {
        "agent_type": protocol.OVS_AGENT_TYPE,
        "binary": protocol.OVS_AGENT_BINARY,
        "configurations": {
            "arp_responder_enabled": True,
            "baremetal_smartnic": False,
            "bridge_mappings": dict(bridge_mappings),
            "datapath_type": datapath_type,
            "devices": devices,
            "enable_distributed_routing": True,
            "in_distributed_mode": True,
            "extensions": [],
            "integration_bridge": integration_bridge,
            "l2_population": True,
            "log_agent_heartbeats": False,
            "ovs_hybrid_plug": False,
            "tunnel_types": ["vxlan"],
            "tunneling_ip": tunneling_ip,
            "vhostuser_socket_dir": "/var/run/openvswitch",
        },
        "host": host,
        "topic": "N/A",
    }
    if start_flag:
        state["start_flag"] = True
        state["resource_versions"] = dict(RESOURCE_VERSIONS)
    return state
