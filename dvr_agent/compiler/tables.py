"""OpenFlow table ids, fixed port numbers, and the one way flows are written.

Tables follow Neutron's (neutron_lib ovs_constants; digest §3.1) so an operator reading
``dump-flows`` sees the pipeline they know. We skip Neutron's QoS/firewall tables
58/59: br-int's table 0 goes straight to 60.

Flows are written in the canonical form ``ovs-ofctl --no-names dump-flows`` prints with
OpenFlow 1.0 (checked on OVS 3.1): ports by number, ``set_tunnel`` as
``load:0x..->NXM_NX_TUN_ID[]``, ``in_port`` as ``IN_PORT``, VLAN removal as ``strip_vlan``,
a protocol shorthand (``arp``) first, matches in the order OVS prints them. A dumped flow
then compares equal to the compiled one, so a restarted agent changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from dvr_agent import state

# br-int
INT_LOCAL_SWITCHING = 0
INT_DVR_TO_SRC_MAC = 1
INT_DVR_TO_SRC_MAC_PHYSICAL = 2
INT_ARP_DVR_MAC_TO_DST_MAC = 3
INT_CANARY = 23
INT_TRANSIENT = 60
# br-tun
TUN_DVR_PROCESS = 1
TUN_PATCH_LV_TO_TUN = 2
TUN_VXLAN_TO_LV = 4
TUN_DVR_NOT_LEARN = 9
TUN_LEARN_FROM_TUN = 10
TUN_UCAST_TO_TUN = 20
TUN_ARP_RESPONDER = 21
TUN_FLOOD_TO_TUN = 22
# physical bridges
PHYS_DVR_PROCESS = 1
PHYS_LOCAL_VLAN_TRANSLATION = 2
PHYS_DVR_NOT_LEARN = 3

DEAD_VLAN = 4095
LEARN_HARD_TIMEOUT = 300

# Patch ports get fixed numbers (ofport_request), so the base pipeline can name them
# before OVSDB reports anything. They sit far above the numbers OVS hands out on its own
# (lowest free from 1), so a VM tap plugged before the agent started cannot hold them.
PATCH_TUN_OFPORT = 60001  # patch-tun on br-int
PATCH_INT_OFPORT = 60001  # patch-int on br-tun
PHYS_PATCH_OFPORT_BASE = 60101  # int-<br> on br-int and phy-<br> on <br>: base + index


def load_tun_id(vni: int) -> str:
    return f"load:{vni:#x}->NXM_NX_TUN_ID[]"


@dataclass(frozen=True, slots=True)
class FlowWriter:
    """Writes flows of one key: every flow carries the key's cookie."""

    cookie: int

    @classmethod
    def for_key(cls, key: str) -> FlowWriter:
        return cls(state.cookie_for(key))

    def __call__(self, bridge: str, table: int, priority: int, match: tuple[str, ...],
                 actions: str) -> state.Flow:
        return state.Flow(bridge=bridge, table=table, priority=priority, match=match,
                          actions=actions, cookie=self.cookie)


def one_flow_per_ident(flows: list[state.Flow]) -> frozenset[state.Flow]:
    """Keep one flow per (bridge, table, priority, match), the first in a fixed order.

    Two router ports on one network share a match in br-int table 3 (dl_vlan=L,
    dl_dst=<host DVR MAC>); OpenFlow holds one flow there (Neutron's second install
    overwrites the first). Choosing by sorted actions keeps the choice independent of
    input order.
    """
    chosen: dict[tuple, state.Flow] = {}
    for flow in sorted(flows, key=lambda f: f.actions):
        chosen.setdefault(flow.ident, flow)
    return frozenset(chosen.values())
