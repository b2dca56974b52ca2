"""Pure decisions of the server: notification planning, SNAT choice, MAC spelling, validation."""

from __future__ import annotations

import pytest

from dvr_agent.rpc import protocol as p
from dvr_agent.server.domain import macs
from dvr_agent.server.domain.notifications import plan_router_notifications
from dvr_agent.server.domain.scheduler import choose_snat_host
from dvr_agent.server.domain.settings import parse_vni_ranges
from dvr_agent.server.errors import BadRequest
from dvr_agent.server.rpc.management import validate

R1, R2 = "r1", "r2"


def casts(notes):
    return [(n.method, n.host, n.version, n.kwargs) for n in notes]


def test_router_change_tells_every_host_and_removes_the_lost_one():
    before = {R1: frozenset({"network", "c1", "c2"})}
    after = {R1: frozenset({"network", "c1"})}
    notes = plan_router_notifications(before, after, l3_hosts={"network", "c1", "c2"})
    assert casts(notes) == [
        ("routers_updated", "c1", "1.1", {"routers": [R1]}),
        ("routers_updated", "network", "1.1", {"routers": [R1]}),
        ("router_removed_from_agent", "c2", "1.0", {"payload": {"router_id": R1}})]


def test_port_change_tells_only_the_interested_host_plus_new_ones():
    before = {R1: frozenset({"network"}), R2: frozenset({"c1"})}
    after = {R1: frozenset({"network", "c1"}), R2: frozenset({"c1"})}
    notes = plan_router_notifications(before, after, l3_hosts={"network", "c1"},
                                      interested={R1: {"c1"}, R2: {"c1"}}, version="1.0")
    assert casts(notes) == [("routers_updated", "c1", "1.0", {"routers": [R1, R2]})]


def test_hosts_without_an_l3_agent_hear_nothing():
    notes = plan_router_notifications({R1: frozenset({"c1"})}, {R1: frozenset()},
                                      l3_hosts=set())
    assert notes == []


def test_snat_host_is_least_loaded_then_by_name():
    assert choose_snat_host(["n2", "n1"], {}) == "n1"
    assert choose_snat_host(["n1", "n2"], {"n1": 3, "n2": 1}) == "n2"
    assert choose_snat_host([], {}) is None


def test_random_mac_keeps_three_octets_or_four_when_the_fourth_is_set():
    assert macs.random_mac("fa:16:3f:00:00:00", lambda bits: 0x0a0b0c) == "fa:16:3f:0a:0b:0c"
    assert macs.random_mac("fa:16:3f:ab:00:00", lambda bits: 0x0b0c) == "fa:16:3f:ab:0b:0c"


def test_dvr_macs_go_over_rpc_as_neutron_spells_them():
    assert macs.neutron_mac("fa:16:3f:77:86:3e") == "FA-16-3F-77-86-3E"
    assert macs.canonical_mac("FA-16-3F-77-86-3E") == "fa:16:3f:77:86:3e"
    with pytest.raises(BadRequest, match="not a MAC"):
        macs.canonical_mac("fa:16:3f")


def test_vni_ranges_are_parsed_and_checked():
    assert parse_vni_ranges(["1:10", "100:200"]) == ((1, 10), (100, 200))
    for bad in ("10:1", "0:5", "1-5", "1:16777216"):
        with pytest.raises(ValueError, match=bad):
            parse_vni_ranges([bad])


@pytest.mark.parametrize(("command", "args", "message"), [
    ("router.fly", {}, "unknown command"),
    ("router.create", {}, "missing argument"),
    ("router.create", {"name": "r", "size": "L"}, "unknown argument"),
    ("router.create", {"name": ["r"]}, "must be a string"),
    ("router.create", "r1", "must be a dict"),
])
def test_management_requests_are_validated_before_anything_runs(command, args, message):
    with pytest.raises(BadRequest, match=message):
        validate(command, args)


def test_notification_topics_are_neutrons():
    notes = plan_router_notifications({}, {R1: frozenset({"c1"})}, l3_hosts={"c1"})
    assert notes[0].topic == p.TOPIC_L3_AGENT and notes[0].host == "c1"
