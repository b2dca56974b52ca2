"""A network key: the local VLAN's tunnel or physnet flows, and the tags of local VIFs.

Digest §3.2 (tables 4 and 22 of br-tun) and §3.3/3.4 (VLAN translation between br-int
and a physnet bridge). Flows that need an ofport OVS has not reported yet are left out;
the facts name this key again when it arrives.

Broadcasts go to every tunnel peer, and unicast is learned (table 10), rather than
pruned and pre-programmed from l2population's FDB: a restarted agent cannot ask the
server for the FDB again (Neutron resends it only when a port comes up), and flows that
depended on it would change on every restart — which this agent promises never to do.
"""

from __future__ import annotations

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
    if ofports:
        outputs = ",".join(f"output:{p}" for p in sorted(ofports.values()))
        flows.append(flow(br, t.TUN_FLOOD_TO_TUN, 1, (f"dl_vlan={vlan}",),
                          f"{to_tunnel},{outputs}"))
    return flows


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

