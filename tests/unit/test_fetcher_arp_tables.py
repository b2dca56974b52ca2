"""The fetcher asks for ARP tables in bulk, and one subnet per call where the server has
no bulk call (Neutron's API): facts in, no broker (the wire is
tests/functional/test_arp_tables_bulk.py)."""

from __future__ import annotations

from dvr_agent.agent.core import AgentCore
from dvr_agent.agent.fetcher import BULK_SUBNETS, Fetcher
from dvr_agent.agent.metrics import Metrics
from dvr_agent.agent.workqueue import WorkQueue
from dvr_agent.rpc.agent_clients import BulkUnsupported
from tests.unit.compiler_world import facts_for, parse_routers, router, router_interface, uid

SUBNETS = BULK_SUBNETS + 5  # two bulk calls


def _vm(subnet_id: str) -> dict:
    return {"id": uid("vm-" + subnet_id), "mac_address": "fa:16:3e:00:00:01",
            "network_id": uid("net-" + subnet_id), "device_owner": "compute:nova",
            "fixed_ips": [{"subnet_id": subnet_id, "ip_address": "10.0.0.5"}]}


class Api:
    def __init__(self, bulk: bool):
        self.bulk = bulk
        self.calls: list[tuple[str, int]] = []

    def get_ports_by_subnets(self, subnet_ids):
        self.calls.append(("bulk", len(subnet_ids)))
        if not self.bulk:
            raise BulkUnsupported("UnsupportedVersion")
        return {s: [_vm(s)] for s in subnet_ids}

    def get_ports_by_subnet(self, subnet_id):
        self.calls.append(("one", 1))
        return [_vm(subnet_id)]


def _fetcher(api: Api) -> tuple[Fetcher, AgentCore, list[str]]:
    facts = facts_for("compute1")
    routers = [router(f"r{i}", [router_interface(f"r{i}", f"net{i}", f"sub{i}",
                                                 "10.0.0.0/24", "10.0.0.1",
                                                 "fa:16:3e:00:10:01")])
               for i in range(SUBNETS)]
    facts.set_routers(parse_routers(routers))
    core = AgentCore(facts, WorkQueue())
    subnets = sorted(facts.subnets_without_arp_table())
    assert len(subnets) == SUBNETS
    return Fetcher(core, api, 64, on_vif_details=lambda *_: None, metrics=Metrics()), core, \
        subnets


def test_tables_come_in_bulk_from_a_server_that_has_the_call():
    api = Api(bulk=True)
    fetcher, core, subnets = _fetcher(api)
    try:
        fetcher.fetch_arp_tables(subnets, [])
    finally:
        fetcher.stop()
    assert sorted(api.calls) == [("bulk", 5), ("bulk", BULK_SUBNETS)]
    assert not core.read(lambda f: f.subnets_without_arp_table())


def test_one_call_per_subnet_from_a_server_without_it_and_bulk_never_tried_again():
    api = Api(bulk=False)
    fetcher, core, subnets = _fetcher(api)
    try:
        fetcher.fetch_arp_tables(subnets, [])
        assert not core.read(lambda f: f.subnets_without_arp_table())
        assert api.calls.count(("one", 1)) == SUBNETS
        api.calls.clear()
        fetcher.fetch_arp_tables(subnets[:3], [])
        assert api.calls == [("one", 1)] * 3
    finally:
        fetcher.stop()
