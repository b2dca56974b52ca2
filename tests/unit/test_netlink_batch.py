"""The hand-encoded rtnetlink messages, decoded by pyroute2's own parser as a second opinion."""

from __future__ import annotations

import socket
import struct

import pytest
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from dvr_agent.drivers.netlink_batch import (
    DELETE,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_REPLACE,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    NUD_PERMANENT,
    REPLACE,
    RT_SCOPE_LINK,
    RT_SCOPE_NOWHERE,
    RT_SCOPE_UNIVERSE,
    RTM_DELNEIGH,
    RTM_NEWNEIGH,
    RTM_NEWROUTE,
    RTN_UNICAST,
    RTPROT_STATIC,
    neigh_payload,
    nlmsg,
    parse_acks,
    parse_neighbour,
    route_payload,
)


def _decode(parser, data: bytes):
    msg = parser(data)
    msg.decode()
    return msg


def test_a_neighbour_replace_decodes_as_a_permanent_entry():
    data = nlmsg(RTM_NEWNEIGH, REPLACE, 7, neigh_payload(3, "10.0.0.5", "fa:16:3e:00:00:05"))
    msg = _decode(ndmsg, data)
    assert msg["header"]["length"] == len(data) == 48
    assert msg["header"]["type"] == RTM_NEWNEIGH
    assert msg["header"]["flags"] == NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
    assert msg["header"]["sequence_number"] == 7
    assert (msg["family"], msg["ifindex"], msg["state"]) == (socket.AF_INET, 3, NUD_PERMANENT)
    assert msg.get_attr("NDA_DST") == "10.0.0.5"
    assert msg.get_attr("NDA_LLADDR") == "fa:16:3e:00:00:05"


def test_an_ipv6_neighbour_delete_carries_only_its_key():
    msg = _decode(ndmsg, nlmsg(RTM_DELNEIGH, DELETE, 1, neigh_payload(9, "2001:db8::9", None)))
    assert msg["header"]["flags"] == NLM_F_REQUEST | NLM_F_ACK
    assert (msg["family"], msg["ifindex"]) == (socket.AF_INET6, 9)
    assert msg.get_attr("NDA_DST") == "2001:db8::9"
    assert msg.get_attr("NDA_LLADDR") is None


def test_a_default_route_in_a_big_table_goes_in_rta_table():
    data = nlmsg(RTM_NEWROUTE, REPLACE, 8, route_payload("0.0.0.0/0", 70000, "10.0.0.1", 3))
    msg = _decode(rtmsg, data)
    assert msg["header"]["length"] == len(data)
    assert (msg["family"], msg["dst_len"], msg["table"]) == (socket.AF_INET, 0, 0)
    assert (msg["proto"], msg["type"], msg["scope"]) == (RTPROT_STATIC, RTN_UNICAST,
                                                         RT_SCOPE_UNIVERSE)
    assert msg.get_attr("RTA_TABLE") == 70000
    assert msg.get_attr("RTA_DST") is None
    assert msg.get_attr("RTA_GATEWAY") == "10.0.0.1"
    assert msg.get_attr("RTA_OIF") == 3


def test_an_on_link_host_route_has_scope_link_and_its_table_in_the_header_too():
    msg = _decode(rtmsg, nlmsg(RTM_NEWROUTE, REPLACE, 1,
                               route_payload("203.0.113.7/32", 100, None, 4)))
    assert (msg["dst_len"], msg["table"], msg["scope"]) == (32, 100, RT_SCOPE_LINK)
    assert msg.get_attr("RTA_DST") == "203.0.113.7"
    assert msg.get_attr("RTA_GATEWAY") is None


def test_a_route_delete_matches_any_scope():
    msg = _decode(rtmsg, nlmsg(RTM_NEWROUTE, DELETE, 1,
                               route_payload("2001:db8:1::/64", 1000, "2001:db8::2", 4,
                                             delete=True)))
    assert (msg["family"], msg["scope"]) == (socket.AF_INET6, RT_SCOPE_NOWHERE)
    assert msg.get_attr("RTA_DST") == "2001:db8:1::"
    assert msg.get_attr("RTA_GATEWAY") == "2001:db8::2"


def _ack(seq: int, error: int) -> bytes:
    body = struct.pack("=i", -error) + struct.pack("=IHHII", 16, RTM_NEWNEIGH, 0, seq, 0)
    return nlmsg(NLMSG_ERROR, 0, seq, body)


def test_acks_map_each_error_to_its_sequence_number():
    data = _ack(1, 0) + _ack(2, 17) + _ack(3, 0) + nlmsg(3, 0, 4, b"")  # NLMSG_DONE is skipped
    assert list(parse_acks(data)) == [(1, 0), (2, 17), (3, 0)]


@pytest.mark.parametrize(("ip", "family"), [("10.1.2.3", socket.AF_INET),
                                            ("2001:db8::3", socket.AF_INET6)])
def test_a_neighbour_entry_parses_back(ip, family):
    entry = parse_neighbour(neigh_payload(5, ip, "fa:16:3e:0a:0b:0c"))
    assert (entry.family, entry.ifindex, entry.state) == (family, 5, NUD_PERMANENT)
    assert entry.dst == socket.inet_pton(family, ip)
    assert entry.lladdr == bytes.fromhex("fa163e0a0b0c")
