"""How a namespace device is plugged into br-int (qr-, sg-, qg-, fg-).

By default an OVS internal port whose tap is moved into the namespace; with
``ovs_use_veth`` a veth whose host end (``tap...``) is the OVS port. Either way the OVS
Interface carries Neutron's ``external_ids`` so that the OVS side (ours, or Neutron's
own agent on a mixed host) binds it like any VIF, plus our owner key.
"""

from __future__ import annotations

from dvr_agent import names, state
from dvr_agent.facts import Facts
from dvr_agent.models import Port
from dvr_agent.state import Link, LinkKind, OvsPort


def ovs_port_name(facts: Facts, device: str) -> str:
    """The name of the device's port on br-int (where its ofport is looked up)."""
    return names.veth_host_name(device) if facts.config.ovs_use_veth else device


def plug(facts: Facts, key: str, port: Port, device: str) -> tuple[Link, OvsPort]:
    """The namespace end (a Link) and the OVS port of one router/fip device."""
    vlan = facts.local_vlan(port.network_id)
    external_ids = (("attached-mac", port.mac), ("iface-id", port.id),
                    ("iface-status", "active"), (state.OWNER_EXTERNAL_ID, key))
    other_config = [("net_uuid", port.network_id)]
    segment = facts.segment(port.network_id)
    if segment is not None:
        other_config.append(("network_type", segment.network_type))
        if segment.segmentation_id is not None:
            other_config.append(("segmentation_id", str(segment.segmentation_id)))
    if facts.config.ovs_use_veth:
        peer = names.veth_host_name(device)
        link = Link(name=device, kind=LinkKind.OVS_VETH, mac=port.mac, mtu=port.mtu, peer=peer)
        ovs_name, ovs_type = peer, ""
    else:
        link = Link(name=device, kind=LinkKind.OVS_INTERNAL, mac=port.mac, mtu=port.mtu)
        ovs_name, ovs_type = device, "internal"
    ovs_port = OvsPort(bridge=facts.config.integration_bridge, name=ovs_name, type=ovs_type,
                       tag=vlan, external_ids=tuple(sorted(external_ids)),
                       other_config=tuple(sorted(other_config)))
    return link, ovs_port
