"""RPC over TLS: with the lab's own CA the agent and the server work; an agent that trusts
another CA is refused, and says so in one line that names the certificate problem."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pyroute2 import netns

from dvr_agent import names
from dvr_agent.lab.rabbitmq import RabbitMQNode
from tests.fixtures.agent_proc import AgentProcess
from tests.fixtures.dvr_server import DvrServer
from tests.fixtures.tls import make_ca, make_server_cert
from tests.functional.agent_env import wait_for


@pytest.fixture
def tls_broker(tmp_path):
    ca = make_ca(tmp_path / "pki", "lab")
    files = make_server_cert(tmp_path / "pki", ca, "127.0.0.1")
    node = RabbitMQNode(tls=files).start()
    try:
        yield node, files, tmp_path
    finally:
        node.stop()


def _rabbit_tls(cacert: str) -> dict:
    return {"oslo_messaging_rabbit": {"ssl": "true", "ssl_ca_file": cacert}}


def test_agent_and_server_talk_over_tls_and_a_wrong_ca_is_refused(tls_broker, ovs):
    node, files, tmp = tls_broker
    url = f"rabbit://guest:guest@127.0.0.1:{node.tls_port}/"
    server = DvrServer(transport_url=url, state_dir=str(tmp / "server"),
                       sections=_rabbit_tls(files["cacert"]))
    server.start()
    agent = AgentProcess(host="network", mode="dvr_snat", transport_url=url,
                         state_dir=str(tmp / "agent"), ovs_db=ovs.db, ovs_rundir=ovs.rundir,
                         extra=_rabbit_tls(files["cacert"]))
    try:
        agent.start()
        server.ctl_json("network", "create", "net1")
        server.ctl_json("subnet", "create", "net1", "10.10.1.0/24", "--name", "sub1")
        router = server.ctl_json("router", "create", "r1")
        server.ctl_json("router", "add-interface", "r1", "sub1")
        server.ctl_json("network", "create", "public", "--external")
        server.ctl_json("subnet", "create", "public", "203.0.113.0/24")
        server.ctl_json("router", "set-gateway", "r1", "public")
        wait_for("the router built over TLS",
                 lambda: names.snat_ns_name(router["id"]) in netns.listnetns())
        agent.stop()

        other_ca = make_ca(tmp / "other", "other")
        stranger = AgentProcess(host="compute9", mode="dvr", transport_url=url,
                                state_dir=str(tmp / "stranger"), ovs_db=ovs.db,
                                ovs_rundir=ovs.rundir, local_ip="192.0.2.19",
                                extra={**_rabbit_tls(other_ca["cacert"]),
                                       "agent": {"dvr_mac_attempts": 2, "rpc_timeout": 3}})
        stranger.write_config()
        done = subprocess.run([sys.executable, "-m", "dvr_agent.agent.main", "--config-file",
                               stranger.conf_path], capture_output=True, text=True, timeout=120)
        assert done.returncode == 1
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("dvr-agent: no DVR MAC for compute9"), last
        assert "CERTIFICATE_VERIFY_FAILED" in last or "certificate verify failed" in last, last
    finally:
        agent.close()
        server.stop()
        for name in netns.listnetns():
            if names.is_owned_namespace(name):
                netns.remove(name)
