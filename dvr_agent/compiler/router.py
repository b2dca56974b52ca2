"""A router key: qrouter-R, snat-R on its snat host, their OVS ports, the DVR flows; or
a legacy router's one qrouter-R (compiler.legacy)."""

from __future__ import annotations

from dvr_agent import state
from dvr_agent.compiler.dvr_flows import router_dvr_flows
from dvr_agent.compiler.legacy import compile_legacy
from dvr_agent.compiler.qrouter import compile_qrouter
from dvr_agent.compiler.snat import compile_snat
from dvr_agent.compiler.tables import one_flow_per_ident
from dvr_agent.facts import Facts


def compile_router(facts: Facts, router_id: str) -> state.KeyState:
    key = state.router_key(router_id)
    router = facts.routers.get(router_id)
    if router is None:
        return state.KeyState(key=key)
    if not router.distributed:
        qrouter, ports = compile_legacy(facts, router, key)
        return state.KeyState(key=key, namespaces=(qrouter,), ports=frozenset(ports))
    qrouter, ports = compile_qrouter(facts, router, key)
    namespaces = [qrouter]
    if facts.is_snat_host(router):
        snat, snat_ports = compile_snat(facts, router, key)
        namespaces.append(snat)
        ports += snat_ports
    return state.KeyState(key=key, namespaces=tuple(namespaces), ports=frozenset(ports),
                          flows=one_flow_per_ident(router_dvr_flows(facts, router, key)))
