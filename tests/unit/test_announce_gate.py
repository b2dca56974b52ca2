"""A floating IP routed here is announced only once its VM's port is wired here (issue
10, mobility): in a live migration the binding moves before the tap is plugged, and an
early gratuitous ARP would steer the upstream to a host where nothing answers yet."""

from __future__ import annotations

from dvr_agent.agent.announce_gate import AnnouncementGate
from tests.unit.compiler_world import (
    EXT_NET,
    agent_gateway_port,
    facts_for,
    fip,
    gateway_port,
    parse_routers,
    router,
    router_interface,
    uid,
)

FIP_NS = f"fip-{EXT_NET}"
FIP_TARGET = (FIP_NS, "fg-0123456789a", "203.0.113.7")
GATEWAY_TARGET = ("qrouter-" + uid("r1"), "qr-0123456789a", "10.10.1.1")
PORT = "port-of-the-vm"


class Recorder:
    def __init__(self):
        self.announced, self.withdrawn = [], []

    def announce(self, targets):
        self.announced += list(targets)

    def withdraw(self, targets):
        self.withdrawn += list(targets)


def _gate(port_of=lambda net, ip: PORT if (net, ip) == (EXT_NET, "203.0.113.7") else None):
    sent = Recorder()
    return AnnouncementGate(sent, port_of), sent


def test_floating_ip_of_a_port_not_yet_wired_is_held_until_it_is():
    gate, sent = _gate()
    gate.announce([FIP_TARGET, GATEWAY_TARGET])
    assert sent.announced == [GATEWAY_TARGET] and gate.held() == 1
    gate.wired(["another-port"])
    assert sent.announced == [GATEWAY_TARGET]
    gate.wired([PORT])
    assert sent.announced == [GATEWAY_TARGET, FIP_TARGET] and gate.held() == 0


def test_floating_ip_of_a_wired_port_goes_at_once_until_the_port_is_unplugged():
    gate, sent = _gate()
    gate.wired([PORT])
    gate.announce([FIP_TARGET])
    assert sent.announced == [FIP_TARGET]
    gate.unplugged(PORT)
    gate.announce([FIP_TARGET])
    assert sent.announced == [FIP_TARGET] and gate.held() == 1


def test_a_withdrawn_floating_ip_is_never_announced_later():
    gate, sent = _gate()
    gate.announce([FIP_TARGET])
    gate.withdraw([(FIP_NS, "203.0.113.7")])
    gate.wired([PORT])
    assert sent.announced == [] and sent.withdrawn == [(FIP_NS, "203.0.113.7")]
    gate.unplugged(PORT)
    gate.announce([FIP_TARGET])
    gate.withdraw([(FIP_NS, None)])  # the whole namespace went
    gate.wired([PORT])
    assert sent.announced == []


def test_addresses_that_are_not_floating_ips_routed_here_are_never_held():
    gate, sent = _gate(port_of=lambda net, ip: None)
    fg_own = (FIP_NS, "fg-0123456789a", "203.0.113.49")
    gate.announce([fg_own, GATEWAY_TARGET])
    assert sent.announced == [fg_own, GATEWAY_TARGET] and gate.held() == 0


def _router_with_fip(fip_host):
    return router("r1", [router_interface("r1", "net1", "sub1", "10.10.1.0/24", "10.10.1.1",
                                          "fa:16:3e:aa:19:bd")],
                  gateway=gateway_port("r1", "203.0.113.191", "fa:16:3e:83:e6:bd", "network"),
                  snat_host="network",
                  fips=[fip("f1", "r1", "203.0.113.7", "10.10.1.5", fip_host)],
                  fip_agent_ports=[agent_gateway_port("compute1", "203.0.113.49",
                                                      "fa:16:3e:75:47:52")])


def test_facts_name_the_port_of_a_floating_ip_routed_here_and_nothing_else():
    compute = facts_for("compute1")
    compute.set_routers(parse_routers([_router_with_fip("compute1")]))
    assert compute.floating_ip_port(EXT_NET, "203.0.113.7") == uid("f1-port")
    assert compute.floating_ip_port(EXT_NET, "203.0.113.49") is None  # fg-'s own address
    assert compute.floating_ip_port(uid("another-net"), "203.0.113.7") is None
    compute.set_routers(parse_routers([_router_with_fip("compute2")]))
    assert compute.floating_ip_port(EXT_NET, "203.0.113.7") is None  # routed elsewhere now
