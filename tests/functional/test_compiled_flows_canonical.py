"""Every kind of flow the compiler emits round-trips through a real Open vSwitch unchanged.

The reconciler diffs compiled flows against ``dump-flows``; a flow written in any other
form than the one OVS prints would be rewritten on every pass. So: compile a
representative host, add its flows to a private OVS, dump them back, compare.
"""

from __future__ import annotations

import ipaddress

import pytest

from dvr_agent.compiler import compile_host
from dvr_agent.models import (
    DeviceDetails,
    LocalVif,
    Segment,
    TunnelPeer,
)
from dvr_agent.state import Flow
from tests.unit.compiler_world import (
    EXT_NET,
    agent_gateway_port,
    csnat_port,
    facts_for,
    fip,
    gateway_port,
    parse_routers,
    router,
    router_interface,
    uid,
)

ovs_fixtures = pytest.importorskip("tests.fixtures.ovs")  # lands with the OVS driver branch
ovs = ovs_fixtures.ovs

pytestmark = pytest.mark.root


def _representative_facts():
    """A network node that is also a compute host: every flow kind at least once."""
    facts = facts_for("network", mode="dvr_snat", local_ip=ipaddress.IPv4Address("192.0.2.10"))
    sg = csnat_port("r1", "net1", "sub1", "10.10.1.0/24", "10.10.1.1", "10.10.1.113",
                    "fa:16:3e:aa:01:6a", "network")
    r1 = router("r1", [router_interface("r1", "net1", "sub1", "10.10.1.0/24", "10.10.1.1",
                                        "fa:16:3e:aa:19:bd")],
                gateway=gateway_port("r1", "203.0.113.191", "fa:16:3e:83:e6:bd", "network"),
                snat_host="network", snat_interfaces=[sg],
                fips=[fip("f1", "r1", "203.0.113.152", "10.10.1.146", "network")],
                fip_agent_ports=[agent_gateway_port("network", "203.0.113.49",
                                                    "fa:16:3e:75:47:52")])
    facts.set_routers(parse_routers([r1]))
    details = DeviceDetails.from_dict({
        "port_id": uid("vm1"), "network_id": uid("net1"), "mac_address": "fa:16:3e:a5:01:f8",
        "fixed_ips": [{"subnet_id": uid("sub1"), "ip_address": "10.10.1.146"}],
        "network_type": "vxlan", "segmentation_id": 38})
    facts.set_vif(LocalVif.from_details("tapvm1", details))
    facts.set_segment(uid("net1"), Segment(network_type="vxlan", segmentation_id=38))
    facts.set_segment(EXT_NET, Segment(network_type="flat", physical_network="physnet1"))
    facts.set_tunnel_peers([TunnelPeer(ip=ipaddress.IPv4Address("192.0.2.11"))])
    for name, ofport in (("tapvm1", 7), ("qr-" + uid("r1-qr-sub1")[:11], 8),
                         ("sg-" + uid("r1-sg-sub1")[:11], 9), ("vxlan-c000020b", 3)):
        facts.set_ofport(name, ofport)
    return facts


def _parse_dump_line(bridge: str, line: str) -> Flow:
    head, _, actions = line.strip().partition(" actions=")
    fields = [f.strip() for f in head.split(",")]
    cookie = int(fields.pop(0).removeprefix("cookie="), 16)
    table = 0
    if fields[0].startswith("table="):
        table = int(fields.pop(0).removeprefix("table="))
    priority = int(fields.pop(0).removeprefix("priority="))
    return Flow(bridge=bridge, table=table, priority=priority, match=tuple(fields),
                actions=actions, cookie=cookie)


def test_every_compiled_flow_round_trips_through_ovs_unchanged(ovs, tmp_path):
    host = compile_host(_representative_facts())
    by_bridge: dict[str, set[Flow]] = {}
    for flow in host.flows():
        by_bridge.setdefault(flow.bridge, set()).add(flow)
    assert {"br-int", "br-tun", "br-ex"} <= by_bridge.keys()
    kinds = {(f.bridge, f.table, f.priority) for f in host.flows()}
    assert {("br-tun", 1, 1), ("br-tun", 22, 1), ("br-tun", 4, 1), ("br-int", 3, 5),
            ("br-int", 60, 20), ("br-int", 0, 99), ("br-ex", 2, 4)} <= kinds
    for bridge, flows in sorted(by_bridge.items()):
        ovs.vsctl("--may-exist", "add-br", bridge, "--", "set", "Bridge", bridge,
                  "datapath_type=netdev", "fail_mode=secure")
        mgmt = f"unix:{ovs.rundir}/{bridge}.mgmt"
        spec = tmp_path / f"{bridge}.flows"
        spec.write_text("".join(f.spec() + "\n" for f in sorted(flows, key=Flow.spec)))
        ovs.ofctl("--protocols=OpenFlow14", "--bundle", "add-flows", mgmt, str(spec))
        dumped = ovs.ofctl("--no-stats", "--no-names", "dump-flows", mgmt)
        actual = {_parse_dump_line(bridge, line) for line in dumped.splitlines()
                  if line.strip().startswith("cookie=")}
        assert actual == flows, f"{bridge}: {sorted(f.render() for f in actual ^ flows)}"
        rendered = {f"cookie={f.cookie:#x}, {f.render()}" for f in flows}
        assert {line.strip() for line in dumped.splitlines() if line.strip()} == rendered
