"""The DVR flows of one router on this host (digest §3.5 A/B/C; the seed's flows).

Every host answers for the same gateway IP and MAC, so:
- frames to the gateway MAC never leave the host, ARP for the gateway IP never reaches a
  tunnel, and frames from the gateway MAC leave with this host's DVR MAC as source
  (br-tun DVR_PROCESS, the seed's ``mod_dl_src`` lines);
- frames arriving from another host's DVR MAC get the gateway MAC back as source and go
  straight to the local VM (or sg- on the snat host) they are for (br-int tables 1, 60);
- ARP replies the br-tun responder addressed to our DVR MAC go back to the gateway MAC.
Only interfaces that hold their subnet's gateway IP are DVR interfaces (Neutron's rule).

A VIF's allowed-address-pair MACs (a VIP's virtual MAC, which any of several VMs may hold
at a time) get the DVR_TO_SRC_MAC flow too (Neutron does the same, digest §3.5 B), but
are then switched by NORMAL rather than output to one port: br-int learns the MAC from
the current holder's gratuitous ARP, so frames follow the VIP when it moves.
"""

from __future__ import annotations

import ipaddress

from dvr_agent import names
from dvr_agent.compiler import tables as t
from dvr_agent.compiler.ports import ovs_port_name
from dvr_agent.facts import Facts
from dvr_agent.models import FixedIp, Port, Router
from dvr_agent.state import Flow


def router_dvr_flows(facts: Facts, router: Router, key: str) -> list[Flow]:
    flows: list[Flow] = []
    flow = t.FlowWriter.for_key(key)
    for port in router.interfaces:
        vlan = facts.local_vlan(port.network_id)
        if vlan is None:
            continue
        for fixed in port.ipv4_fixed_ips():
            if _is_gateway(port, fixed):
                flows += _interface_flows(facts, flow, port, fixed.ip, vlan,
                                          takes_dvr_mac_frames(facts, router, port.network_id))
                flows += _delivery_flows(facts, router, flow, port, fixed.subnet_id, vlan)
    return flows


def _is_gateway(port: Port, fixed: FixedIp) -> bool:
    subnet = port.subnet(fixed.subnet_id)
    return subnet is None or subnet.gateway_ip in (None, fixed.ip)


def takes_dvr_mac_frames(facts: Facts, router: Router, network_id: str) -> bool:
    """Whether ``router``'s qr- port on the network gets the frames addressed to this
    host's DVR MAC (br-int table 3: dl_vlan=L, dl_dst=D).

    That match names the network, not the router, so OpenFlow holds one such flow per
    network. Two routers on one network (the seed's r1 and r2 on net-a) each compiled
    it, and whichever was written last replaced the other's: the other's key then
    looked drifted to every comparison, and each repair undid the previous one. The
    router of lowest id among those holding a gateway IP there owns it; Neutron's agent
    lets the last port bound win. ARP replies for each router's own requests do not
    depend on it: table 0 steers them by ``arp_tha`` first (prio 99).
    """
    owners = [r.id for r in facts.routers_on_network(network_id)
              if any(_is_gateway(p, fixed) for p in r.interfaces if p.network_id == network_id
                     for fixed in p.ipv4_fixed_ips())]
    return bool(owners) and min(owners) == router.id


def _interface_flows(facts: Facts, flow: t.FlowWriter, port: Port,
                     gateway_ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
                     vlan: int, dvr_mac_frames: bool) -> list[Flow]:
    """(A) flows of a qr- port: gateway MAC G, host DVR MAC D, local VLAN L; the
    table-3 flow only if this port takes the DVR MAC's frames (takes_dvr_mac_frames)."""
    cfg, mac, own = facts.config, port.mac, facts.own_dvr_mac
    tun, br_int = cfg.tunnel_bridge, cfg.integration_bridge
    flows = [
        flow(tun, t.TUN_DVR_PROCESS, 2, (f"dl_vlan={vlan}", f"dl_dst={mac}"), "drop"),
        flow(tun, t.TUN_FLOOD_TO_TUN, 3, ("arp", f"dl_vlan={vlan}", f"arp_tpa={gateway_ip}"),
             "drop"),
    ]
    if own is None:
        return flows  # no DVR MAC yet: nothing may leave with the gateway MAC as source
    flows += [
        flow(tun, t.TUN_DVR_PROCESS, 1, (f"dl_vlan={vlan}", f"dl_src={mac}"),
             f"mod_dl_src:{own},resubmit(,{t.TUN_PATCH_LV_TO_TUN})"),
        flow(br_int, t.INT_LOCAL_SWITCHING, 99,
             ("arp", f"dl_dst={own}", "arp_op=2", f"arp_tha={mac}"),
             f"mod_dl_dst:{mac},resubmit(,{t.INT_TRANSIENT})"),
    ]
    ofport = facts.ofport(ovs_port_name(facts, names.qr_device_name(port.id)))
    if ofport is not None and dvr_mac_frames:
        flows.append(flow(br_int, t.INT_ARP_DVR_MAC_TO_DST_MAC, 5,
                          (f"dl_vlan={vlan}", f"dl_dst={own}"),
                          f"mod_dl_dst:{mac},strip_vlan,output:{ofport}"))
    return flows


def _delivery_flows(facts: Facts, router: Router, flow: t.FlowWriter, port: Port,
                    subnet_id: str, vlan: int) -> list[Flow]:
    """(B) per local VIF on the subnet, (C) per sg- of the subnet on the snat host."""
    targets = [(vif.mac, facts.ofport(vif.port_name)) for vif in facts.vifs_on_subnet(subnet_id)]
    if facts.is_snat_host(router):
        targets += [(sg.mac, facts.ofport(ovs_port_name(facts, names.sg_device_name(sg.id))))
                    for sg in router.snat_interfaces
                    if any(x.subnet_id == subnet_id for x in sg.fixed_ips)]
    br_int = facts.config.integration_bridge
    to_gateway_mac = f"mod_dl_src:{port.mac},resubmit(,{t.INT_TRANSIENT})"
    flows = []
    for mac, ofport in targets:
        if ofport is None:
            continue
        match = (f"dl_vlan={vlan}", f"dl_dst={mac}")
        flows.append(flow(br_int, t.INT_DVR_TO_SRC_MAC, 20, match, to_gateway_mac))
        flows.append(flow(br_int, t.INT_TRANSIENT, 20, match, f"strip_vlan,output:{ofport}"))
    subnet = next((port.interface(x).network for x in port.fixed_ips
                   if x.subnet_id == subnet_id), None)
    pair_macs = {m for vif in facts.vifs_on_network(port.network_id) if subnet is not None
                 for m in vif.pair_macs_in(subnet)} - {mac for mac, _ in targets}
    for mac in sorted(pair_macs):
        flows.append(flow(br_int, t.INT_DVR_TO_SRC_MAC, 20, (f"dl_vlan={vlan}", f"dl_dst={mac}"),
                          to_gateway_mac))
    return flows
