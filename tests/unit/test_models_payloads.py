"""Models accept what neutron-server really sends and reject malformed input naming the field."""

import contextlib
import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dvr_agent.models import (
    ArpEntry,
    DevicesDetails,
    HostMac,
    PayloadError,
    Port,
    Router,
    dvr_macs,
    fdb_entries,
    router_ids,
    tunnel_sync_reply,
)
from tests.unit.compiler_world import captures

CALLS = captures("agent_rpc_calls.json")
NOTIFICATIONS = captures("server_to_agent_notifications.json")


def _results(method):
    return [c["result"] for c in CALLS if c["method"] == method]


def _with_fip_router():
    return next(r for res in _results("sync_routers") for r in res if r.get("_floatingips"))


def test_every_captured_sync_routers_reply_parses():
    routers = [Router.from_dict(r) for res in _results("sync_routers") for r in res]
    assert routers and all(r.id == "e87505b3-d455-49fc-bf31-5a2c51203085" for r in routers)
    fip = Router.from_dict(_with_fip_router()).floating_ips[0]
    assert str(fip.floating_ip) == "203.0.113.152" and fip.bound_to("compute1")


def test_captured_dvr_macs_in_upper_case_with_dashes_become_canonical():
    macs = [HostMac.from_dict(m) for m in _results("get_dvr_mac_address_list")[0]]
    assert {m.mac for m in macs} == {"fa:16:3f:77:86:3e", "fa:16:3f:c6:07:da"}


def test_captured_notifications_parse():
    parsers = {"add_arp_entry": ArpEntry.from_kwargs, "del_arp_entry": ArpEntry.from_kwargs,
               "dvr_mac_address_update": dvr_macs, "routers_updated": router_ids,
               "add_fdb_entries": fdb_entries, "remove_fdb_entries": fdb_entries}
    seen = set()
    for note in NOTIFICATIONS:
        if note["method"] in parsers:
            parsers[note["method"]](note["args"])
            seen.add(note["method"])
    assert seen == set(parsers)


def test_captured_ovs_agent_replies_parse():
    details = DevicesDetails.from_dict(_results(
        "get_devices_details_list_and_failed_devices")[0])
    assert details.devices[0].segmentation_id == 38
    assert str(tunnel_sync_reply(_results("tunnel_sync")[0])[0].ip) == "192.0.2.11"
    ports = [Port.from_dict(p) for p in _results("get_ports_by_subnet")[0]]
    assert ports[0].fixed_ips[0].prefixlen is None


@pytest.mark.parametrize(("mutate", "path", "reason"), [
    (lambda r: r.update(id="not-a-uuid"), "id", "not a UUID"),
    (lambda r: r["_interfaces"][1].update(mac_address="fa:16:3e:zz:00:00"),
     "_interfaces[1].mac_address", "not a MAC"),
    (lambda r: r["_interfaces"][0].update(mac_address="01:00:5e:00:00:01"),
     "_interfaces[0].mac_address", "multicast"),
    (lambda r: r["_interfaces"][0]["subnets"][0].update(cidr="10.10.1.1/24"),
     "_interfaces[0].subnets[0].cidr", "not a CIDR"),
    (lambda r: r["_interfaces"][0]["fixed_ips"][0].update(ip_address="10.99.0.1"),
     "_interfaces[0].fixed_ips[0].ip_address", "not in subnet"),
    (lambda r: r["_floatingips"][0].update(fixed_ip_address="10.10.1.999"),
     "_floatingips[0].fixed_ip_address", "not an IP"),
    (lambda r: r["_floatingips"][0].pop("floating_ip_address"),
     "_floatingips[0].floating_ip_address", "missing"),
    (lambda r: r["gw_port"].update(mtu=10), "gw_port.mtu", "out of range"),
    (lambda r: r["gw_port"].update(mtu="1500"), "gw_port.mtu", "expected an integer"),
    (lambda r: r.update(enable_snat="yes"), "enable_snat", "expected true or false"),
    (lambda r: r["_interfaces"][0].update(id="x" * 10_000_000), "_interfaces[0].id",
     "not a UUID"),
])
def test_malformed_router_is_rejected_with_the_field_named(mutate, path, reason):
    payload = copy.deepcopy(_with_fip_router())
    mutate(payload)
    with pytest.raises(PayloadError) as err:
        Router.from_dict(payload)
    assert err.value.path == path
    assert reason in err.value.reason
    assert len(str(err.value)) < 300  # a 10 MB value never ends up in a log line whole


def test_duplicate_host_in_dvr_mac_update_is_rejected():
    with pytest.raises(PayloadError, match=r"dvr_macs\[1\].host"):
        dvr_macs({"dvr_macs": [{"host": "a", "mac_address": "FA-16-3F-00-00-01"},
                               {"host": "a", "mac_address": "FA-16-3F-00-00-02"}]})


def test_arp_entry_path_names_the_nested_field():
    with pytest.raises(PayloadError) as err:
        ArpEntry.from_kwargs({"payload": {"router_id": "e87505b3-d455-49fc-bf31-5a2c51203085",
                                          "arp_table": {"ip_address": "10.0.0.1",
                                                        "mac_address": "nope",
                                                        "subnet_id": "x"}}})
    assert err.value.path == "payload.arp_table.mac_address"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner,
                                                                max_size=6),
    max_leaves=30)


def _mutations(base):
    """Payloads near a real one: a random key of a random nested dict replaced."""
    def mutate(data):
        payload = copy.deepcopy(base)
        nodes = [payload]
        for node in nodes:
            children = node.values() if isinstance(node, dict) else node
            nodes += [c for c in children if isinstance(c, dict | list)]
        target = data.draw(st.sampled_from(nodes))
        if isinstance(target, dict) and target:
            key = data.draw(st.sampled_from(sorted(target)))
            target[key] = data.draw(_json)
        elif isinstance(target, list) and target:
            target[data.draw(st.integers(0, len(target) - 1))] = data.draw(_json)
        return payload
    return mutate


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzzed_router_payloads_raise_only_payload_error(data):
    payload = _mutations(_with_fip_router())(data)
    with contextlib.suppress(PayloadError):  # anything else fails the test
        Router.from_dict(payload)


@settings(max_examples=200, deadline=None)
@given(_json)
def test_arbitrary_json_raises_only_payload_error(value):
    for parse in (Router.from_dict, Port.from_dict, ArpEntry.from_kwargs, fdb_entries,
                  dvr_macs, DevicesDetails.from_dict, tunnel_sync_reply, router_ids):
        with contextlib.suppress(PayloadError):
            parse(value)
