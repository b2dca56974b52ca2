"""dvrctl against a running dvr-server: what an operator types and sees."""

from __future__ import annotations

import pytest

from tests.fixtures.dvr_server import DvrServer


@pytest.fixture
def server(rabbitmq, tmp_path):
    srv = DvrServer(rabbitmq.url(), str(tmp_path / "state")).start()
    yield srv
    srv.stop()


def test_operator_builds_a_dvr_topology_by_name(server):
    ctl = server.ctl_json
    net = ctl("network", "create", "net1")
    ext = ctl("network", "create", "public", "--external", "--physnet", "physnet1")
    assert (ext["provider:network_type"], ext["provider:physical_network"]) == ("flat",
                                                                                "physnet1")
    sub = ctl("subnet", "create", "net1", "10.0.1.0/24", "--name", "sub1")
    assert (sub["gateway_ip"], sub["network_id"]) == ("10.0.1.1", net["id"])
    ctl("subnet", "create", "public", "203.0.113.0/24", "--gateway", "203.0.113.254")
    router = ctl("router", "create", "r1")
    ctl("router", "add-interface", "r1", "sub1")
    ctl("router", "set-gateway", router["id"], "public")
    port = ctl("port", "create", "net1", "--host", "compute1", "--ip", "10.0.1.10",
               "--mac", "fa:16:3e:00:00:10", "--name", "vm1")
    assert (port["fixed_ips"][0]["ip_address"], port["mac_address"], port["binding:host_id"],
            port["device_owner"]) == ("10.0.1.10", "fa:16:3e:00:00:10", "compute1",
                                      "compute:nova")
    fip = ctl("floatingip", "create", "public")
    fip = ctl("floatingip", "associate", fip["floating_ip_address"], "vm1")
    assert (fip["fixed_ip_address"], fip["router_id"]) == ("10.0.1.10", router["id"])
    shown = ctl("router", "show", "r1")
    assert shown["hosts"] == ["compute1"]  # no dvr_snat agent is up: no SNAT host yet
    assert [i["ip_address"] for i in shown["interfaces"]] == ["10.0.1.1"]
    assert {r["name"] for r in ctl("router", "list")} == {"r1"}
    assert ctl("port", "show", "vm1")["id"] == port["id"]
    ctl("floatingip", "disassociate", fip["id"])
    ctl("floatingip", "delete", fip["id"])
    ctl("port", "delete", "vm1")
    ctl("router", "clear-gateway", "r1")
    ctl("router", "remove-interface", "r1", "sub1")
    assert ctl("router", "delete", "r1") == {"id": router["id"]}
    assert ctl("router", "list") == []


def test_tables_for_people(server):
    server.ctl_json("network", "create", "net1")
    done = server.ctl("network", "list")
    assert done.returncode == 0
    header, row = done.stdout.splitlines()[1], done.stdout.splitlines()[3]
    assert header.split("|")[1:4] == [" id                                   ", " name ",
                                      " type  "]
    assert "| net1 | vxlan |" in row
    done = server.ctl("host", "list")
    assert "dvr mac" in done.stdout


def test_errors_are_one_line_and_a_nonzero_exit(server):
    for argv, message in [
        (["router", "add-interface", "nope", "sub"], "no router has the name or id 'nope'"),
        (["subnet", "create", "nonet", "10.0.0.0/24"], "no network has the name or id"),
        (["network", "create", "x", "--physnet", "p"], "applies to external networks only"),
    ]:
        done = server.ctl(*argv)
        assert done.returncode == 1, done
        assert done.stderr.startswith("dvrctl: error: ") and message in done.stderr
        assert done.stderr.count("\n") == 1 and done.stdout == ""


def test_no_server_is_a_clear_timeout(rabbitmq, tmp_path):
    idle = DvrServer(rabbitmq.url(), str(tmp_path / "idle"))
    idle.write_config()
    done = idle.ctl("host", "list", timeout=2)
    assert done.returncode == 1
    assert "no answer from dvr-server" in done.stderr and done.stderr.count("\n") == 1


def test_new_commands_refuse_bad_input_in_one_line_and_change_nothing(server):
    """Issue 10's commands against the real server: routes, address pairs, moves, kinds,
    MTUs. Each bad request is one line and exit status 1; the topology stays as it was."""
    ctl = server.ctl_json
    server.ctl_json("network", "create", "net1")
    ctl("subnet", "create", "net1", "10.0.1.0/24", "--name", "sub1")
    ctl("router", "create", "r1")
    ctl("router", "add-interface", "r1", "sub1")
    ctl("port", "create", "net1", "--host", "compute1", "--name", "vm1")
    before = {kind: ctl(kind, "list") for kind in ("network", "router", "port")}
    for argv, message in [
        (["router", "add-route", "r1", "10.9.0.0/33", "10.0.1.5"], "is not a CIDR"),
        (["router", "add-route", "r1", "10.9.0.1/24", "10.0.1.5"], "host bits set"),
        (["router", "add-route", "r1", "10.9.0.0/24", "10.0.1.500"], "is not an IP address"),
        (["router", "add-route", "r1", "10.9.0.0/24", "10.0.9.5"], "is not on a subnet"),
        (["router", "remove-route", "r1", "10.9.0.0/24", "10.0.1.5"], "has no route"),
        (["port", "update", "vm1", "--allowed-address", "10.0.1.300"], "not an IP address"),
        (["port", "update", "vm1", "--allowed-address", "10.0.1.9,zz:16:3e:00:00:01"],
         "is not a MAC address"),
        (["port", "update", "vm1", "--host", "nowhere"], "has no L3 agent"),
        (["router", "set", "r1", "--distributed", "false"], "set it down first"),
        (["router", "set", "r1", "--admin-state", "sideways"], "must be true or false"),
        (["network", "create", "n2", "--mtu", "9000"], "outside 68..1450"),
    ]:
        done = server.ctl(*argv)
        assert done.returncode == 1, (argv, done)
        assert done.stderr.startswith("dvrctl: error: ") and message in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and done.stdout == ""
    assert {kind: ctl(kind, "list") for kind in ("network", "router", "port")} == before
