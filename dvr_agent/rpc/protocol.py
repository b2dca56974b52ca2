"""Neutron's agent RPC protocol as constants: the one place topics and versions live.

Both sides import these, so dvr-server and dvr-agent cannot drift apart, and an agent
built on them also talks to an unmodified neutron-server. Values follow neutron 29.0.0
(see ../shared/reference/neutron-dvr-digest.md section 4 and neutron-captures/).
"""

from __future__ import annotations

CONTROL_EXCHANGE = "neutron"

# Agent -> server (calls; versions are what the agent's client prepares).
TOPIC_L3_PLUGIN = "q-l3-plugin"  # L3PluginApi: sync_routers, get_router_ids, ...
TOPIC_PLUGIN = "q-plugin"  # PluginApi + DVRServerRpcApi (the OVS agent's side)
TOPIC_REPORTS = "q-reports-plugin"  # report_state heartbeats

# Server -> agent.
TOPIC_L3_AGENT = "l3_agent"  # routers_updated (l3_agent.<host>), *_arp_entry (fanout), ...
AGENT_NOTIFIER_PREFIX = "q-agent-notifier"


def notifier_topic(resource: str, operation: str) -> str:
    """Neutron's fanout topic for OVS-agent notifications, e.g. q-agent-notifier-port-update."""
    return f"{AGENT_NOTIFIER_PREFIX}-{resource}-{operation}"


TOPIC_PORT_UPDATE = notifier_topic("port", "update")
TOPIC_PORT_DELETE = notifier_topic("port", "delete")
TOPIC_NETWORK_UPDATE = notifier_topic("network", "update")
TOPIC_NETWORK_DELETE = notifier_topic("network", "delete")
TOPIC_TUNNEL_UPDATE = notifier_topic("tunnel", "update")
TOPIC_TUNNEL_DELETE = notifier_topic("tunnel", "delete")
TOPIC_L2POP_UPDATE = notifier_topic("l2population", "update")
TOPIC_DVR_UPDATE = notifier_topic("dvr", "update")

# Versions: the client's base target version, and the version each method is prepared with.
L3_PLUGIN_BASE_VERSION = "1.0"
L3_PLUGIN_METHOD_VERSIONS = {
    "sync_routers": "1.0",
    "update_floatingip_statuses": "1.1",
    "get_ports_by_subnet": "1.2",
    "get_agent_gateway_port": "1.2",
    "get_service_plugin_list": "1.3",
    "get_router_ids": "1.9",
}
L3_PLUGIN_SERVER_VERSION = "1.13"

PLUGIN_BASE_VERSION = "1.9"
PLUGIN_METHOD_VERSIONS = {
    "tunnel_sync": "1.4",
    "get_devices_details_list_and_failed_devices": "1.5",
    "update_device_list": "1.9",
}
PLUGIN_SERVER_VERSION = "1.9"

DVR_BASE_VERSION = "1.0"  # DVRServerRpcApi: every method prepared with the base version
DVR_SERVER_VERSION = "1.1"

REPORTS_VERSION = "1.4"

# Not Neutron's: the ARP tables of many subnets in one call, on q-l3-plugin in a namespace
# of our own. neutron-server answers it with UnsupportedVersion, and the agent then asks
# one subnet per call, as Neutron's agents do (agent/fetcher.py).
BULK_NAMESPACE = "dvr_agent"
BULK_VERSION = "1.0"
MAX_SUBNETS_PER_CALL = 500

L3_AGENT_ENDPOINT_VERSION = "1.4"
L3_AGENT_NOTIFY_VERSION = "1.0"  # router_deleted, router_removed_from_agent, fip ns delete
L3_AGENT_ROUTERS_UPDATED_VERSION = "1.1"
L3_AGENT_ARP_VERSION = "1.2"
AGENT_NOTIFIER_VERSION = "1.0"

# Agent identities exactly as Neutron's agents report them (digest 4.7).
L3_AGENT_TYPE = "L3 agent"
L3_AGENT_BINARY = "neutron-l3-agent"
OVS_AGENT_TYPE = "Open vSwitch agent"
OVS_AGENT_BINARY = "neutron-openvswitch-agent"

# Device owners (neutron_lib.constants).
DEVICE_OWNER_ROUTER_INTF = "network:router_interface"
DEVICE_OWNER_DVR_INTERFACE = "network:router_interface_distributed"
DEVICE_OWNER_ROUTER_SNAT = "network:router_centralized_snat"
DEVICE_OWNER_ROUTER_GW = "network:router_gateway"
DEVICE_OWNER_AGENT_GW = "network:floatingip_agent_gateway"
DEVICE_OWNER_FLOATINGIP = "network:floatingip"
DEVICE_OWNER_DHCP = "network:dhcp"
DEVICE_OWNER_COMPUTE_PREFIX = "compute:"
ROUTER_INTERFACE_OWNERS = frozenset(
    {
        DEVICE_OWNER_ROUTER_INTF,
        DEVICE_OWNER_DVR_INTERFACE,
        "network:ha_router_replicated_interface",
    }
)

FLOATINGIP_STATUS_ACTIVE = "ACTIVE"
FLOATINGIP_STATUS_DOWN = "DOWN"
FLOATINGIP_STATUS_ERROR = "ERROR"

AGENT_MODE_DVR = "dvr"
AGENT_MODE_DVR_SNAT = "dvr_snat"
AGENT_MODE_DVR_NO_EXTERNAL = "dvr_no_external"
AGENT_MODE_LEGACY = "legacy"
