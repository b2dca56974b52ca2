"""reconcile/flow_memory.py: flows kept as text come back equal, and forgetting wins races."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dvr_agent.reconcile.flow_memory import FlowMemory, decode, encode
from dvr_agent.state import Flow

# what ovs-ofctl prints: printable ASCII (a learn() action has commas, brackets, spaces)
PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40)
FLOWS = st.builds(Flow, bridge=st.sampled_from(["br-int", "br-tun", "br-ex"]),
                  table=st.integers(0, 254), priority=st.integers(0, 65535),
                  match=st.lists(PRINTABLE.filter(bool), max_size=5).map(tuple),
                  actions=PRINTABLE, cookie=st.integers(0, 2**64 - 1))


@given(st.sets(FLOWS, max_size=20))
def test_flows_come_back_equal(flows):
    assert decode(encode(flows)) == flows


def test_the_same_flows_give_the_same_text():
    flows = [Flow("br-int", 60, 20, ("dl_vlan=1", "dl_dst=fa:16:3e:00:00:0a"),
                  "strip_vlan,output:42", 0xDD00000000000001),
             Flow("br-tun", 0, 32768, (), "drop", 0)]
    assert encode(flows) == encode(reversed(flows))
    assert decode(encode(flows)) == set(flows)


def test_remember_recall_forget():
    memory = FlowMemory()
    flow = Flow("br-int", 1, 2, ("dl_vlan=3",), "drop", 7)
    assert memory.remember({"a": {flow}, "b": {flow}, "empty": set()}, memory.epoch())
    assert memory.recall(["a", "c"]) == {"a": {flow}}
    assert memory.remembered() == {"a", "b"}, "a key without flows is not kept"
    memory.forget(["a"])
    assert memory.remembered() == {"b"}
    memory.forget()
    assert not memory.remembered()


def test_a_forget_since_the_epoch_wins():
    memory = FlowMemory()
    flow = Flow("br-int", 1, 2, ("dl_vlan=3",), "drop", 7)
    memory.remember({"a": {flow}}, memory.epoch())
    epoch = memory.epoch()  # a pass reads ...
    memory.forget(["b"])  # ... the comparison finds drift elsewhere ...
    assert not memory.remember({"a": {flow}, "c": {flow}}, epoch)  # ... the pass is over
    assert memory.remembered() == set(), "what the pass believed is dropped, not kept"
