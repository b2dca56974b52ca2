"""The host key: bridges, patch and tunnel ports, base pipelines, DVR host MAC flows.

Digest §3.2-3.4 with DVR on: br-tun sends frames from br-int through DVR_PROCESS (table
1) and frames from tunnels through DVR_NOT_LEARN (table 9); br-int sends frames from a
remote host's DVR MAC to table 1 and frames to our own DVR MAC to table 3.
"""

from __future__ import annotations

import ipaddress

from dvr_agent import state
from dvr_agent.compiler import tables as t
from dvr_agent.facts import Facts
from dvr_agent.facts.config import INT_PATCH_PREFIX, PHYS_PATCH_PREFIX
from dvr_agent.state import Bridge, Flow, OvsPort

PATCH_TUN = "patch-tun"
PATCH_INT = "patch-int"
_OWNER = ((state.OWNER_EXTERNAL_ID, state.HOST_KEY),)


def tunnel_port_name(remote_ip: ipaddress.IPv4Address) -> str:
    """Neutron's name: ``vxlan-`` + the remote IPv4 as 8 hex digits (vxlan-c000020b)."""
    return f"vxlan-{int(remote_ip):08x}"


def phys_patch_ofport(facts: Facts, bridge: str) -> int:
    """The fixed number of int-<br> on br-int and of phy-<br> on <br>."""
    index = [b for _, b in facts.config.bridge_mappings].index(bridge)
    return t.PHYS_PATCH_OFPORT_BASE + index


def tunnel_ofports(facts: Facts) -> dict[ipaddress.IPv4Address, int]:
    """Tunnel peer -> OpenFlow port, for the peers whose port OVS has numbered."""
    ports = {}
    for ip in facts.l2.peers:
        ofport = facts.ofport(tunnel_port_name(ip))
        if ofport is not None:
            ports[ip] = ofport
    return ports


def compile_host(facts: Facts) -> state.KeyState:
    """The host key's state: what every DVR host has, whatever routers it hosts."""
    flows = (_br_int_flows(facts) + _br_tun_flows(facts) + _phys_flows(facts)
             + _dvr_mac_flows(facts))
    return state.KeyState(key=state.HOST_KEY, bridges=frozenset(_bridges(facts)),
                          ports=frozenset(_patch_ports(facts) + _tunnel_ports(facts)),
                          flows=frozenset(flows))


def _bridges(facts: Facts) -> list[Bridge]:
    cfg = facts.config
    names = [cfg.integration_bridge, cfg.tunnel_bridge] + [b for _, b in cfg.bridge_mappings]
    return [Bridge(name=n, datapath_type=cfg.datapath_type) for n in names]


def _patch(bridge: str, name: str, peer: str, ofport: int) -> OvsPort:
    return OvsPort(bridge=bridge, name=name, type="patch", options=(("peer", peer),),
                   external_ids=_OWNER, ofport_request=ofport)


def _patch_ports(facts: Facts) -> list[OvsPort]:
    cfg = facts.config
    ports = [_patch(cfg.integration_bridge, PATCH_TUN, PATCH_INT, t.PATCH_TUN_OFPORT),
             _patch(cfg.tunnel_bridge, PATCH_INT, PATCH_TUN, t.PATCH_INT_OFPORT)]
    for _, bridge in cfg.bridge_mappings:
        ofport = phys_patch_ofport(facts, bridge)
        ports.append(_patch(cfg.integration_bridge, INT_PATCH_PREFIX + bridge,
                            PHYS_PATCH_PREFIX + bridge, ofport))
        ports.append(_patch(bridge, PHYS_PATCH_PREFIX + bridge, INT_PATCH_PREFIX + bridge,
                            ofport))
    return ports


def _tunnel_ports(facts: Facts) -> list[OvsPort]:
    cfg = facts.config
    if cfg.local_ip is None:
        return []
    return [OvsPort(bridge=cfg.tunnel_bridge, name=tunnel_port_name(peer.ip), type="vxlan",
                    options=(("dst_port", str(peer.udp_port)), ("key", "flow"),
                             ("local_ip", str(cfg.local_ip)), ("remote_ip", str(peer.ip))),
                    external_ids=_OWNER)
            for peer in facts.l2.peers.values()]


def _br_int_flows(facts: Facts) -> list[Flow]:
    flow, br = t.FlowWriter.for_key(state.HOST_KEY), facts.config.integration_bridge
    flows = [
        flow(br, t.INT_LOCAL_SWITCHING, 65535, (f"dl_vlan={t.DEAD_VLAN}",), "drop"),
        flow(br, t.INT_LOCAL_SWITCHING, 0, (), f"resubmit(,{t.INT_TRANSIENT})"),
        flow(br, t.INT_DVR_TO_SRC_MAC, 1, (), "drop"),
        flow(br, t.INT_DVR_TO_SRC_MAC_PHYSICAL, 1, (), "drop"),
        flow(br, t.INT_TRANSIENT, 1, (), "NORMAL"),
    ]
    for _, bridge in facts.config.bridge_mappings:
        flows.append(flow(br, t.INT_LOCAL_SWITCHING, 2,
                          (f"in_port={phys_patch_ofport(facts, bridge)}",), "drop"))
    return flows


def canary_flow(bridge: str) -> Flow:
    """The canary: a flow of its own key in a table nothing else uses on any of our bridges
    (see CANARY_KEY)."""
    return t.FlowWriter.for_key(state.CANARY_KEY)(bridge, t.INT_CANARY, 0, (), "drop")


def _br_tun_flows(facts: Facts) -> list[Flow]:
    flow, br = t.FlowWriter.for_key(state.HOST_KEY), facts.config.tunnel_bridge
    unicast = "dl_dst=00:00:00:00:00:00/01:00:00:00:00:00"
    multicast = "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00"
    learn = (f"learn(table={t.TUN_UCAST_TO_TUN},hard_timeout={t.LEARN_HARD_TIMEOUT},"
             "priority=1,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],"
             "load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],"
             f"output:OXM_OF_IN_PORT[]),output:{t.PATCH_INT_OFPORT}")
    flows = [
        flow(br, 0, 1, (f"in_port={t.PATCH_INT_OFPORT}",), f"resubmit(,{t.TUN_DVR_PROCESS})"),
        flow(br, 0, 0, (), "drop"),
        flow(br, t.TUN_DVR_PROCESS, 0, (), f"resubmit(,{t.TUN_PATCH_LV_TO_TUN})"),
        flow(br, t.TUN_PATCH_LV_TO_TUN, 1, ("arp", "dl_dst=ff:ff:ff:ff:ff:ff"),
             f"resubmit(,{t.TUN_ARP_RESPONDER})"),
        flow(br, t.TUN_PATCH_LV_TO_TUN, 0, (unicast,), f"resubmit(,{t.TUN_UCAST_TO_TUN})"),
        flow(br, t.TUN_PATCH_LV_TO_TUN, 0, (multicast,), f"resubmit(,{t.TUN_FLOOD_TO_TUN})"),
        flow(br, t.TUN_VXLAN_TO_LV, 0, (), "drop"),
        flow(br, t.TUN_DVR_NOT_LEARN, 0, (), f"resubmit(,{t.TUN_LEARN_FROM_TUN})"),
        # Learned flows get no cookie on purpose: they are OVS's, they time out, and a
        # cookie of ours would make the reconciler delete them as unwanted.
        flow(br, t.TUN_LEARN_FROM_TUN, 1, (), learn),
        flow(br, t.TUN_UCAST_TO_TUN, 0, (), f"resubmit(,{t.TUN_FLOOD_TO_TUN})"),
        flow(br, t.TUN_ARP_RESPONDER, 0, (), f"resubmit(,{t.TUN_FLOOD_TO_TUN})"),
        flow(br, t.TUN_FLOOD_TO_TUN, 0, (), "drop"),
    ]
    for ofport in sorted(tunnel_ofports(facts).values()):
        flows.append(flow(br, 0, 1, (f"in_port={ofport}",), f"resubmit(,{t.TUN_VXLAN_TO_LV})"))
    return flows


def _phys_flows(facts: Facts) -> list[Flow]:
    """Each physnet bridge (digest §3.4); only flat/VLAN external networks use them."""
    flow = t.FlowWriter.for_key(state.HOST_KEY)
    flows = []
    for _, br in facts.config.bridge_mappings:
        phy = f"in_port={phys_patch_ofport(facts, br)}"
        flows += [
            flow(br, 0, 2, (phy,), f"resubmit(,{t.PHYS_DVR_PROCESS})"),
            flow(br, 0, 1, (), f"resubmit(,{t.PHYS_DVR_NOT_LEARN})"),
            flow(br, t.PHYS_DVR_PROCESS, 0, (), f"resubmit(,{t.PHYS_LOCAL_VLAN_TRANSLATION})"),
            flow(br, t.PHYS_LOCAL_VLAN_TRANSLATION, 2, (phy,), "drop"),
            flow(br, t.PHYS_DVR_NOT_LEARN, 1, (), "NORMAL"),
        ]
    return flows


def _dvr_mac_flows(facts: Facts) -> list[Flow]:
    """Frames from other hosts' routers skip MAC learning and go to DVR_TO_SRC_MAC; frames
    to our own DVR MAC (ARP responder replies to our routers) go to table 3.
    """
    flow, cfg = t.FlowWriter.for_key(state.HOST_KEY), facts.config
    patch_tun = f"in_port={t.PATCH_TUN_OFPORT}"
    flows = []
    for mac in sorted(set(facts.remote_dvr_macs.values())):
        flows.append(flow(cfg.integration_bridge, t.INT_LOCAL_SWITCHING, 2,
                          (patch_tun, f"dl_src={mac}"), f"resubmit(,{t.INT_DVR_TO_SRC_MAC})"))
        flows.append(flow(cfg.tunnel_bridge, t.TUN_DVR_NOT_LEARN, 1, (f"dl_src={mac}",),
                          f"output:{t.PATCH_INT_OFPORT}"))
    if facts.own_dvr_mac:
        flows.append(flow(cfg.integration_bridge, t.INT_LOCAL_SWITCHING, 5,
                          (patch_tun, f"dl_dst={facts.own_dvr_mac}"),
                          f"resubmit(,{t.INT_ARP_DVR_MAC_TO_DST_MAC})"))
    return flows
