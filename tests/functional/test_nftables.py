"""The nftables driver in real network namespaces (the kernel's nf_tables)."""

from __future__ import annotations

import subprocess
import threading
import uuid

import pytest
from pyroute2 import netns

from dvr_agent.drivers import nftables
from dvr_agent.drivers.errors import DriverError, InvalidInput
from dvr_agent.state import NatRules

FIP = NatRules(
    prerouting=('iifname "rfp-e87505b3-d" ip daddr 203.0.113.152 dnat to 10.10.1.146',),
    postrouting=('oifname "rfp-e87505b3-d" ip saddr 10.10.1.146 snat to 203.0.113.152',),
)
SNAT = NatRules(
    postrouting=('oifname "qg-0bd5b983-a8" snat to 203.0.113.191 fully-random',
                 'oifname "qg-0bd5b983-a8" ip saddr 10.10.1.0/24 snat to 203.0.113.191'),
    output=("ip daddr 203.0.113.152 dnat to 10.10.1.146",),
)
MYAPP = ("table ip myapp {\n\tchain post {\n"
         "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
         '\t\toifname "eth0" masquerade\n\t}\n}\n')  # somebody else's, as nft lists it


@pytest.fixture
def namespace():
    name = f"dvrtest-nat-{uuid.uuid4().hex[:8]}"
    netns.create(name)
    try:
        yield name
    finally:
        netns.remove(name)


def nft(namespace: str, *args: str, stdin: str | None = None) -> str:
    """The nft command line, to cross-check the driver with the operator's tool."""
    return subprocess.run(["nsenter", f"--net=/run/netns/{namespace}", "nft", *args],
                          input=stdin, capture_output=True, text=True, check=True).stdout


def test_a_loaded_table_reads_back_equal_and_lists_as_rendered(namespace):
    assert nftables.read(namespace) is None
    nftables.replace(namespace, FIP)
    assert nftables.read(namespace) == FIP
    assert nft(namespace, "list", "table", "ip", "dvr_agent_nat") == nftables.render(FIP)


def test_replace_swaps_every_chain_and_empty_rules_delete_the_table(namespace):
    nftables.replace(namespace, FIP)
    nftables.replace(namespace, SNAT)
    assert nftables.read(namespace) == SNAT

    nftables.replace(namespace, NatRules())
    assert nftables.read(namespace) is None
    assert "dvr_agent_nat" not in nft(namespace, "list", "tables")
    nftables.replace(namespace, NatRules())  # deleting what is gone is fine


def test_other_tables_in_the_namespace_are_never_touched(namespace):
    nft(namespace, "-f", "-", stdin=MYAPP)
    nftables.replace(namespace, FIP)
    nftables.replace(namespace, SNAT)
    nftables.replace(namespace, NatRules())
    assert nft(namespace, "list", "table", "ip", "myapp") == MYAPP


def test_a_replace_the_kernel_refuses_leaves_the_old_table_whole(namespace):
    """One transaction: the old table was already deleted in the batch when the kernel
    refused its last rule, and the whole batch was rolled back."""
    nftables.replace(namespace, FIP)
    refused = NatRules(prerouting=SNAT.output, postrouting=("dnat to 10.0.0.9",))
    with pytest.raises(DriverError, match="Operation not supported"):
        nftables.replace(namespace, refused)
    assert nftables.read(namespace) == FIP


def test_a_listing_during_replaces_never_sees_an_empty_or_half_table(namespace):
    nftables.replace(namespace, FIP)
    seen: list[NatRules | None] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            seen.append(nftables.read(namespace))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(200):
            nftables.replace(namespace, SNAT if i % 2 == 0 else FIP)
    finally:
        done.set()
        thread.join()
    assert seen and set(seen) <= {FIP, SNAT}


@pytest.mark.parametrize("rule", [
    "ip daddr 203.0.113.7 dnat to 10.0.0.5; flush ruleset",
    "ip daddr 203.0.113.7 dnat to 10.0.0.5\nflush ruleset",
    "ip daddr 203.0.113.7 dnat to 10.0.0.5 } }  table ip myapp { chain x {",
    "ip daddr 203.0.113.7 dnat to 10.0.0.5 # hidden",
])
def test_bad_rule_lines_are_refused_and_change_nothing(namespace, rule):
    nft(namespace, "-f", "-", stdin=MYAPP)
    nftables.replace(namespace, FIP)
    before = nft(namespace, "list", "ruleset")
    with pytest.raises(InvalidInput):
        nftables.replace(namespace, NatRules(prerouting=(rule,)))
    assert nft(namespace, "list", "ruleset") == before


def test_a_missing_namespace_is_an_error_not_a_missing_table():
    with pytest.raises(DriverError, match="dvrtest-absent"):
        nftables.read("dvrtest-absent")
    with pytest.raises(DriverError, match="dvrtest-absent"):
        nftables.replace("dvrtest-absent", FIP)
