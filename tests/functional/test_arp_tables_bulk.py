"""ARP tables in bulk over a real RabbitMQ (benchmarks/README.md, fix 13).

dvr-server answers ``get_ports_by_subnets`` (ours, in a namespace of our own on
q-l3-plugin) with each subnet's ``get_ports_by_subnet`` answer. A server without it (an
unmodified neutron-server, here a Neutron-shaped L3 endpoint) makes the agent's client
raise ``BulkUnsupported``, on which the agent falls back to one subnet per call.
"""

from __future__ import annotations

from typing import Any

import oslo_messaging
import pytest

from dvr_agent.rpc import protocol as p
from dvr_agent.rpc.agent_clients import BulkUnsupported, ServerApi
from tests.functional.test_server_rpc import hosts, mgmt, server, transport  # noqa: F401


def test_dvr_server_answers_many_arp_tables_in_one_call(hosts, mgmt, transport):  # noqa: F811
    host = hosts["compute1"].host
    subnets = []
    for i in range(3):
        mgmt.execute("network.create", name=f"net{i}")
        subnets.append(mgmt.execute("subnet.create", network=f"net{i}",
                                    cidr=f"10.30.{i}.0/24")["id"])
        for j in range(i + 1):
            mgmt.execute("port.create", network=f"net{i}", host=host, name=f"vm{i}-{j}")
    api = ServerApi(transport, host, 30)
    tables = api.get_ports_by_subnets(subnets)
    assert set(tables) == set(subnets)
    for i, subnet_id in enumerate(subnets):
        assert tables[subnet_id] == api.get_ports_by_subnet(subnet_id)
        assert sorted(pt["name"] for pt in tables[subnet_id]) == [
            f"vm{i}-{j}" for j in range(i + 1)]


class NeutronL3:
    """What neutron-server 29 serves on q-l3-plugin: no namespace of ours."""

    target = oslo_messaging.Target(version=p.L3_PLUGIN_SERVER_VERSION)

    def get_ports_by_subnet(self, context: dict, **kwargs: Any) -> list[dict]:
        return []


@pytest.fixture
def neutron_shaped_server(transport):  # noqa: F811
    neutron = oslo_messaging.get_rpc_server(
        transport, oslo_messaging.Target(topic=p.TOPIC_L3_PLUGIN, server="neutron-server"),
        [NeutronL3()], access_policy=oslo_messaging.DefaultRPCAccessPolicy)
    neutron.start()
    yield
    neutron.stop()
    neutron.wait()


def test_a_server_without_it_makes_the_client_say_so(neutron_shaped_server, transport):  # noqa: F811
    api = ServerApi(transport, "compute1", 30)
    with pytest.raises(BulkUnsupported):
        api.get_ports_by_subnets(["4e0c1f6a-0000-4000-8000-000000000001"])
    assert api.get_ports_by_subnet("4e0c1f6a-0000-4000-8000-000000000001") == []
