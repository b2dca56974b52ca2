"""The nftables driver's text: rendering, parsing back, refusing rule lines (no kernel)."""

import pytest

from dvr_agent.drivers import nftables
from dvr_agent.drivers.errors import InvalidInput
from dvr_agent.state import NatRules

RULES = NatRules(
    prerouting=('iifname "rfp-e87505b3-d" ip daddr 203.0.113.152 dnat to 10.10.1.146',),
    postrouting=('oifname "qg-0bd5b983-a8" snat to 203.0.113.191 fully-random',),
)

# What nft 1.0.6 printed for this table (`nft list table ip dvr_agent_nat`), byte for byte.
LISTING = (
    "table ip dvr_agent_nat {\n"
    "\tchain prerouting {\n"
    "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
    '\t\tiifname "rfp-e87505b3-d" ip daddr 203.0.113.152 dnat to 10.10.1.146\n'
    "\t}\n"
    "\n"
    "\tchain postrouting {\n"
    "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
    '\t\toifname "qg-0bd5b983-a8" snat to 203.0.113.191 fully-random\n'
    "\t}\n"
    "\n"
    "\tchain output {\n"
    "\t\ttype nat hook output priority -100; policy accept;\n"
    "\t}\n"
    "}\n"
)


def test_render_matches_what_nft_list_table_prints():
    assert nftables.render(RULES) == LISTING


def test_a_listing_parses_back_into_the_same_rules():
    assert nftables.parse(LISTING) == RULES
    assert nftables.parse(nftables.render(NatRules())) == NatRules()


@pytest.mark.parametrize("rule", [
    "ip daddr 1.2.3.4 dnat to 10.0.0.1\nflush ruleset",
    "ip daddr 1.2.3.4 dnat to 10.0.0.1; flush ruleset",
    "ip daddr 1.2.3.4 dnat to 10.0.0.1 } table ip other {",
    "ip daddr 1.2.3.4 dnat to 10.0.0.1 # comment",
    "   ",
])
def test_rule_lines_that_could_escape_their_chain_are_refused(rule):
    with pytest.raises(InvalidInput) as error:
        nftables.check(NatRules(postrouting=(rule,)))
    assert "postrouting" in str(error.value)


def test_bad_rules_are_refused_before_any_namespace_is_entered():
    with pytest.raises(InvalidInput):
        nftables.replace("no-such-namespace", NatRules(output=("counter; flush ruleset",)))
    with pytest.raises(InvalidInput):
        nftables.read("../etc")


def test_a_table_listed_without_rules_is_listed_again(monkeypatch):
    """Our table never has zero rules (an empty NatRules deletes it): a listing that
    shows it so straddled a replace's commit and dropped the new rules. It is listed
    again; after READ_ATTEMPTS such listings it is believed (somebody emptied it)."""
    listings = [nftables.render(NatRules()), LISTING]
    calls = []

    def listing(namespace, commands):
        calls.append(commands)
        return listings.pop(0) if listings else nftables.render(NatRules())

    monkeypatch.setattr(nftables, "_run", listing)
    assert nftables.read("qrouter-x") == RULES
    assert len(calls) == 2
    calls.clear()
    assert nftables.read("qrouter-x") == NatRules()
    assert len(calls) == nftables.READ_ATTEMPTS
