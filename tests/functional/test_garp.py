"""Gratuitous ARP on the real kernel: frames leave the right device of the right namespace,
and a neighbour that cached the address at another MAC moves to the new one at once.

Two namespaces joined by a veth: "upstream" (192.0.2.1) has a neighbour entry for
192.0.2.50 at an old MAC, as a router would after talking to a floating IP's old host;
the sender announces 192.0.2.50 from the other end, whose MAC is the new place.
"""

from __future__ import annotations

import json
import subprocess
import time

from dvr_agent.drivers.garp import GarpSender
from dvr_agent.drivers.netlink import Netlink
from dvr_agent.state import Address
from tests.functional import netlink_fixtures

new_namespace = netlink_fixtures.new_namespace

OLD_MAC = "02:00:00:00:00:01"
NEW_MAC = "02:00:00:00:00:02"


def _neighbour(namespace: str, ip: str) -> dict:
    out = netlink_fixtures.ip("-n", namespace, "-j", "neigh", "show", ip)
    entries = json.loads(out or "[]")
    return entries[0] if entries else {}


def test_announcement_moves_a_cached_neighbour_to_the_new_mac(new_namespace):
    upstream, host = new_namespace(), new_namespace()
    with Netlink(upstream) as up:
        up.veth_add("eth0", "fg-test", host)
        up.link_set("eth0", up=True)
        up.addr_add(Address("eth0", "192.0.2.1/24"))
    with Netlink(host) as nl:
        nl.link_set("fg-test", mac=NEW_MAC, up=True)
    # a reachable entry at the old MAC, as after traffic to the address's old place
    netlink_fixtures.ip("-n", upstream, "neigh", "replace", "192.0.2.50", "lladdr", OLD_MAC,
                        "dev", "eth0", "nud", "reachable")
    capture = subprocess.Popen(["ip", "netns", "exec", upstream, "tcpdump", "-l", "-n", "-e",
                                "-c", "2", "-i", "eth0", "arp"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(1)  # tcpdump attaches
    sender = GarpSender(count=2, interval=0.2)
    sender.start()
    try:
        sender.announce([(host, "fg-test", "192.0.2.50")])
        out, _ = capture.communicate(timeout=20)
        deadline = time.monotonic() + 10
        while sender.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sender.stop()
        if capture.poll() is None:
            capture.kill()
            capture.wait()
    assert f"{NEW_MAC} > ff:ff:ff:ff:ff:ff" in out and "192.0.2.50" in out, out
    entry = _neighbour(upstream, "192.0.2.50")
    assert entry.get("lladdr") == NEW_MAC, entry
    assert (sender.sent, sender.failed) == (2, 0)


def test_a_device_that_is_gone_is_skipped_quietly(new_namespace):
    sender = GarpSender(count=1, interval=0.1)
    sender.start()
    try:
        sender.announce([(new_namespace(), "fg-nothere", "192.0.2.50")])
        deadline = time.monotonic() + 10
        while sender.failed == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sender.stop()
    assert (sender.sent, sender.failed) == (0, 1)
