"""The compiler's entry points: which keys a host wants, and the state of each.

Correctness comes from compiling a key from the facts alone (STYLE exemplar 4): there is
no incremental state here, so compiling a key twice gives the same value, and
compile_host is just every wanted key.
"""

from __future__ import annotations

from dvr_agent import state
from dvr_agent.compiler.base import compile_host as compile_host_key
from dvr_agent.compiler.fip import compile_fip
from dvr_agent.compiler.network import compile_network
from dvr_agent.compiler.router import compile_router
from dvr_agent.facts import Facts
from dvr_agent.state import HostState, KeyKind, KeyState


def wanted_keys(facts: Facts) -> frozenset[str]:
    """Every key that must exist on this host; any other key of ours must go."""
    return frozenset({state.HOST_KEY,
                      *map(state.network_key, facts.local_networks()),
                      *map(state.router_key, facts.routers),
                      *map(state.fip_key, facts.fip_networks())})


def is_wanted(facts: Facts, key: str) -> bool:
    """``key in wanted_keys(facts)`` for one key, in constant time: every pass asks it of
    its keys, and building the whole set cost a small pass at 1,000 routers 13 % of its
    CPU (benchmarks/README.md, fix 17)."""
    kind, ident = state.split_key(key)
    if kind is KeyKind.HOST:
        return True
    assert ident is not None
    if kind is KeyKind.NETWORK:
        return facts.is_local_network(ident)
    if kind is KeyKind.ROUTER:
        return ident in facts.routers
    return facts.is_fip_network(ident)


def compile_key(facts: Facts, key: str) -> KeyState:
    """The desired state of one key; an empty KeyState if the key is not wanted here."""
    if not is_wanted(facts, key):
        return KeyState(key=key)
    kind, ident = state.split_key(key)
    if kind is KeyKind.HOST:
        return compile_host_key(facts)
    assert ident is not None
    if kind is KeyKind.NETWORK:
        return compile_network(facts, ident)
    if kind is KeyKind.ROUTER:
        return compile_router(facts, ident)
    return compile_fip(facts, ident)


def compile_host(facts: Facts) -> HostState:
    """All wanted keys (tests, benchmarks, a full resync)."""
    return HostState.of(compile_key(facts, key) for key in sorted(wanted_keys(facts)))
