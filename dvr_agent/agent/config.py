"""dvr-agent's options (oslo.config), and the checks that turn a bad config into one clear line.

Option names follow Neutron's L3 and OVS agents where the meaning is the same, so an
operator's neutron.conf knowledge carries over. ``etc/dvr-agent.conf`` is generated from
``list_opts()`` by oslo-config-generator and kept current by a test.
"""

from __future__ import annotations

import ipaddress
import os
import socket

from oslo_config import cfg

from dvr_agent import names
from dvr_agent.facts.config import PHYS_PATCH_PREFIX
from dvr_agent.rpc import protocol, transport

DEFAULT_OPTS = [
    cfg.StrOpt("host", default=socket.gethostname(), sample_default="<hostname>",
               help="This host's name as the server knows it: port bindings, router "
                    "scheduling and the DVR MAC table are keyed on it."),
    cfg.StrOpt("state_path", default="/var/lib/dvr-agent",
               help="Where the agent keeps what must survive a restart: link-local "
                    "address pairs and floating IP rule priorities."),
]

AGENT_OPTS = [
    cfg.StrOpt("agent_mode", default=protocol.AGENT_MODE_DVR,
               choices=[(protocol.AGENT_MODE_DVR, "compute node: distributed routing"),
                        (protocol.AGENT_MODE_DVR_SNAT, "network node: also centralized SNAT, "
                                                       "legacy routers"),
                        (protocol.AGENT_MODE_DVR_NO_EXTERNAL,
                         "compute node without external access: east-west only, its "
                         "floating IPs served by the network node")],
               help="The role of this host."),
    cfg.IntOpt("send_arp_for_ha", default=3, min=0,
               help="Gratuitous ARPs sent for an address the agent sets up (a floating IP, "
                    "a gateway or router interface address), so neighbours that cached "
                    "another MAC for it learn the new one at once; 0 disables."),
    cfg.FloatOpt("send_arp_interval", default=1.0, min=0.01,
                 help="Seconds between the gratuitous ARPs for one address."),
    cfg.IntOpt("report_interval", default=30, min=1,
               help="Seconds between heartbeats (report_state) to the server."),
    cfg.StrOpt("availability_zone", default="nova", help="Reported with the heartbeats."),
    cfg.IntOpt("sync_chunk_size", default=256, min=16,
               help="Routers per sync_routers call during a full sync; halved on timeout."),
    cfg.IntOpt("workers", default=4, min=1, max=64,
               help="Threads that apply changes inside namespaces in parallel."),
    cfg.IntOpt("pass_max_keys", default=512, min=1,
               help="At most this many routers/networks are reconciled in one pass."),
    cfg.IntOpt("resync_interval", default=8, min=0,
               help="Every key is compared with the host once in this many seconds, a slice "
                    "at a time; drift (something deleted or changed by hand) is repaired. "
                    "0 disables."),
    cfg.FloatOpt("canary_interval", default=1.0, min=0.1,
                 help="Seconds between checks of the canary flow that reveals an "
                      "ovs-vswitchd restart."),
    cfg.IntOpt("rpc_timeout", default=60, min=1, help="Seconds to wait for a server reply."),
    cfg.IntOpt("dvr_mac_attempts", default=10, min=1,
               help="How often to ask for this host's DVR MAC at start before giving up."),
    cfg.IntOpt("metrics_port", default=0, min=0, max=65535,
               help="Serve Prometheus metrics on this TCP port (0: off)."),
    cfg.StrOpt("metrics_address", default="127.0.0.1",
               help="Address for the metrics endpoint."),
]

OVS_OPTS = [
    cfg.StrOpt("integration_bridge", default="br-int",
               help="The bridge VMs and router ports plug into."),
    cfg.StrOpt("tunnel_bridge", default="br-tun",
               help="The bridge that carries tenant networks over VXLAN to other hosts."),
    cfg.StrOpt("local_ip", help="This host's tunnel endpoint (VXLAN underlay) IPv4 address."),
    cfg.StrOpt("datapath_type", default="system", choices=["system", "netdev"],
               help="system: the kernel datapath (production); netdev: the userspace one."),
    cfg.ListOpt("bridge_mappings", default=[],
                help="physical_network:bridge pairs, e.g. physnet1:br-ex (external networks)."),
    cfg.BoolOpt("ovs_use_veth", default=False,
                help="Plug namespace ports with veth pairs instead of OVS internal ports "
                     "(needed on the userspace datapath to survive an ovs-vswitchd restart)."),
    cfg.StrOpt("ovsdb_connection", default="unix:/run/openvswitch/db.sock",
               help="Where ovsdb-server listens."),
    cfg.StrOpt("ovs_rundir", default="/run/openvswitch",
               help="Where ovs-vswitchd keeps <bridge>.mgmt (OpenFlow management sockets)."),
    cfg.IntOpt("vxlan_udp_port", default=4789, min=1, max=65535,
               help="UDP port of the VXLAN tunnels."),
]


def register(conf: cfg.ConfigOpts) -> None:
    transport.register_opts(conf)
    conf.register_opts(DEFAULT_OPTS)
    conf.register_opts(AGENT_OPTS, "agent")
    conf.register_opts(OVS_OPTS, "ovs")


def list_opts():
    """For oslo-config-generator (entry point oslo.config.opts: dvr_agent.agent)."""
    return [("DEFAULT", DEFAULT_OPTS), ("agent", AGENT_OPTS), ("ovs", OVS_OPTS)]


class ConfigError(Exception):
    """A config value the agent cannot run with; the message names the option."""


def check(conf: cfg.ConfigOpts) -> None:
    """Refuse, with one clear line, what would otherwise fail later and less clearly."""
    if not conf.host or not conf.host.strip():
        raise ConfigError("[DEFAULT] host is empty: set this host's name as the server knows it")
    if not conf.transport_url:
        raise ConfigError("[DEFAULT] transport_url is not set (e.g. rabbit://user:pass@host:5672/)")
    problem = transport.url_problem(conf, conf.transport_url)
    if problem:
        raise ConfigError(f"[DEFAULT] transport_url is not usable: {problem}")
    if not conf.ovs.local_ip:
        raise ConfigError("[ovs] local_ip is not set: this host's VXLAN tunnel endpoint")
    try:
        if ipaddress.ip_address(conf.ovs.local_ip).version != 4:
            raise ValueError
    except ValueError:
        raise ConfigError(f"[ovs] local_ip {conf.ovs.local_ip!r} is not an IPv4 address") from None
    bridges = [conf.ovs.integration_bridge, conf.ovs.tunnel_bridge]
    bridges += list(bridge_mappings(conf).values())
    for bridge in bridges:
        if not names.valid_device_name(bridge):
            raise ConfigError(f"bridge name {bridge!r} is not a valid device name")
    if len(set(bridges)) != len(bridges):
        raise ConfigError(f"bridges must be distinct: {bridges}")
    for bridge in bridge_mappings(conf).values():
        if len(PHYS_PATCH_PREFIX + bridge) > names.DEVICE_NAME_MAX:
            raise ConfigError(f"[ovs] bridge_mappings: bridge {bridge!r} is too long for its "
                              f"patch port {PHYS_PATCH_PREFIX + bridge!r} (at most "
                              f"{names.DEVICE_NAME_MAX - len(PHYS_PATCH_PREFIX)} characters)")
    state = conf.state_path
    try:
        os.makedirs(state, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"[DEFAULT] state_path {state} cannot be created: {exc.strerror}") \
            from None
    if not os.access(state, os.R_OK | os.W_OK | os.X_OK):
        raise ConfigError(f"[DEFAULT] state_path {state} is not readable and writable")


def bridge_mappings(conf: cfg.ConfigOpts) -> dict[str, str]:
    """[ovs] bridge_mappings as {physnet: bridge}; a malformed entry is a ConfigError."""
    result: dict[str, str] = {}
    for entry in conf.ovs.bridge_mappings:
        physnet, sep, bridge = entry.partition(":")
        physnet, bridge = physnet.strip(), bridge.strip()
        if not sep or not physnet or not bridge:
            raise ConfigError(f"[ovs] bridge_mappings entry {entry!r} is not physnet:bridge")
        if physnet in result:
            raise ConfigError(f"[ovs] bridge_mappings names {physnet!r} twice")
        result[physnet] = bridge
    return result
