"""A network key: the local VLAN's tunnel or physnet flows, and the tags of local VIFs.

Digest §3.2 (tables 4/20/21/22 of br-tun) and §3.3/3.4 (VLAN translation between br-int
and a physnet bridge). Flows that need an ofport OVS has not reported yet are left out;
the facts name this key again when it arrives.
"""

from __future__ import annotations

import ipaddress

from dvr_agent import state
from dvr_agent.compiler import tables as t
from dvr_agent.compiler.base import phys_patch_ofport, tunnel_ofports
from dvr_agent.facts import Facts
from dvr_agent.models import Segment
from dvr_agent.state import Flow, VifTag


def compile_network(facts: Facts, network_id: str) -> state.KeyState:
    key = state.network_key(network_id)
    vlan = facts.local_vlan(network_id)
    if vlan is None:
        return state.KeyState(key=key)
    tags = frozenset(VifTag(port=v.port_name, tag=vlan, network_id=network_id)
                     for v in facts.vifs_on_network(network_id))
    segment = facts.segment(network_id)
    flows: list[Flow] = []
    if segment is not None and segment.network_type == "vxlan":
        flows = _tunnel_flows(facts, key, network_id, vlan, segment)
    elif segment is not None and segment.network_type in ("flat", "vlan"):
        flows = _physnet_flows(facts, key, vlan, segment)
    return state.KeyState(key=key, vif_tags=tags, flows=frozenset(flows))


def _tunnel_flows(facts: Facts, key: str, network_id: str, vlan: int,
                  segment: Segment) -> list[Flow]:
    flow, br = t.FlowWriter.for_key(key), facts.config.tunnel_bridge
    vni = segment.segmentation_id
    ofports = tunnel_ofports(facts)
    to_tunnel = f"strip_vlan,{t.load_tun_id(vni)}"
    flows = [flow(br, t.TUN_VXLAN_TO_LV, 1, (f"tun_id={vni:#x}",),
                  f"mod_vlan_vid:{vlan},resubmit(,{t.TUN_DVR_NOT_LEARN})")]
    flood = _flood_ofports(facts, network_id, ofports)
    if flood:
        outputs = ",".join(f"output:{p}" for p in flood)
        flows.append(flow(br, t.TUN_FLOOD_TO_TUN, 1, (f"dl_vlan={vlan}",),
                          f"{to_tunnel},{outputs}"))
    gateway_macs = facts.router_interface_macs(network_id)
    for endpoint, mac, ip in facts.l2.unicast(network_id):
        if mac in gateway_macs or endpoint not in ofports:
            continue  # the same gateway MAC is on every host: never a unicast FDB entry
        flows.append(flow(br, t.TUN_UCAST_TO_TUN, 2, (f"dl_vlan={vlan}", f"dl_dst={mac}"),
                          f"{to_tunnel},output:{ofports[endpoint]}"))
        if ip.version == 4:
            flows.append(flow(br, t.TUN_ARP_RESPONDER, 1,
                              ("arp", f"dl_vlan={vlan}", f"arp_tpa={ip}"),
                              arp_responder_actions(mac, ip)))
    return flows


def _flood_ofports(facts: Facts, network_id: str,
                   ofports: dict[ipaddress.IPv4Address, int]) -> list[int]:
    """Where broadcasts of the network go: l2pop's flooding entries, else every peer."""
    endpoints = facts.l2.flood_endpoints(network_id)
    chosen = ofports.keys() if endpoints is None else endpoints & ofports.keys()
    return sorted(ofports[e] for e in chosen)


def arp_responder_actions(mac: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Turn an ARP request for ``ip`` into the reply ``mac`` would send, back out IN_PORT."""
    return ("move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],"
            f"mod_dl_src:{mac},"
            "load:0x2->NXM_OF_ARP_OP[],"
            "move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],"
            "move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],"
            f"load:{int(mac.replace(':', ''), 16):#x}->NXM_NX_ARP_SHA[],"
            f"load:{int(ip):#x}->NXM_OF_ARP_SPA[],"
            "IN_PORT")


def _physnet_flows(facts: Facts, key: str, vlan: int, segment: Segment) -> list[Flow]:
    """Local VLAN <-> the wire's (untagged for flat, the segment's VLAN id for vlan)."""
    cfg = facts.config
    bridge = cfg.bridge_for(segment.physical_network)
    if bridge is None:
        return []  # physnet not mapped on this host: nothing can carry the network
    flow = t.FlowWriter.for_key(key)
    patch = f"in_port={phys_patch_ofport(facts, bridge)}"
    if segment.network_type == "flat":
        wire_match, to_wire = "vlan_tci=0x0000/0x1fff", "strip_vlan"
    else:
        wire_match = f"dl_vlan={segment.segmentation_id}"
        to_wire = f"mod_vlan_vid:{segment.segmentation_id}"
    return [
        flow(cfg.integration_bridge, t.INT_LOCAL_SWITCHING, 3, (patch, wire_match),
             f"mod_vlan_vid:{vlan},resubmit(,{t.INT_TRANSIENT})"),
        flow(bridge, t.PHYS_LOCAL_VLAN_TRANSLATION, 4, (patch, f"dl_vlan={vlan}"),
             f"{to_wire},NORMAL"),
    ]

