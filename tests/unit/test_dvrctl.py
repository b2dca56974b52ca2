"""dvrctl's command line and output, without a server."""

from __future__ import annotations

import json

import pytest

from dvr_agent.ctl import main as ctl
from dvr_agent.ctl import output


def parse(*argv):
    args = ctl.build_parser().parse_args(list(argv))
    return args.rpc, {k: v for k, v in args.rpc_args(args).items() if v is not None}


@pytest.mark.parametrize(("argv", "rpc", "rpc_args"), [
    (["network", "create", "n1"], "network.create", {"name": "n1"}),
    (["network", "create", "ext", "--external", "--physnet", "physnet2"], "network.create",
     {"name": "ext", "external": True, "physnet": "physnet2"}),
    (["subnet", "create", "n1", "10.0.0.0/24", "--gateway", "10.0.0.254", "--name", "s"],
     "subnet.create", {"network": "n1", "cidr": "10.0.0.0/24", "gateway": "10.0.0.254",
                       "name": "s"}),
    (["router", "add-interface", "r", "s"], "router.add_interface",
     {"router": "r", "subnet": "s"}),
    (["router", "remove-interface", "r", "s"], "router.remove_interface",
     {"router": "r", "subnet": "s"}),
    (["router", "set-gateway", "r", "ext"], "router.set_gateway",
     {"router": "r", "network": "ext"}),
    (["router", "clear-gateway", "r"], "router.clear_gateway", {"router": "r"}),
    (["router", "delete", "r"], "router.delete", {"router": "r"}),
    (["router", "show", "r"], "router.show", {"router": "r"}),
    (["port", "create", "n1", "--host", "c1", "--ip", "10.0.0.5", "--mac",
      "fa:16:3e:00:00:01", "--name", "vm"], "port.create",
     {"network": "n1", "host": "c1", "ip": "10.0.0.5", "mac": "fa:16:3e:00:00:01",
      "name": "vm"}),
    (["port", "delete", "vm"], "port.delete", {"port": "vm"}),
    (["port", "create", "n1", "--ip", "10.0.0.9", "--name", "vip"], "port.create",
     {"network": "n1", "ip": "10.0.0.9", "name": "vip"}),
    (["port", "update", "vm", "--host", "c2"], "port.update", {"port": "vm", "host": "c2"}),
    (["port", "update", "vm", "--allowed-address", "10.0.0.9", "--allowed-address",
      "10.0.0.10,fa:16:3e:00:00:0a"], "port.update",
     {"port": "vm", "allowed_addresses": ["10.0.0.9", "10.0.0.10,fa:16:3e:00:00:0a"]}),
    (["port", "update", "vm", "--no-allowed-address"], "port.update",
     {"port": "vm", "allowed_addresses": []}),
    (["router", "create", "r", "--distributed", "false"], "router.create",
     {"name": "r", "distributed": "false"}),
    (["router", "set", "r", "--admin-state", "down", "--distributed", "true"],
     "router.update", {"router": "r", "admin_state_up": "down", "distributed": "true"}),
    (["router", "add-route", "r", "10.9.0.0/24", "10.0.0.7"], "router.add_route",
     {"router": "r", "destination": "10.9.0.0/24", "nexthop": "10.0.0.7"}),
    (["router", "remove-route", "r", "10.9.0.0/24", "10.0.0.7"], "router.remove_route",
     {"router": "r", "destination": "10.9.0.0/24", "nexthop": "10.0.0.7"}),
    (["network", "create", "small", "--mtu", "1400"], "network.create",
     {"name": "small", "mtu": "1400"}),
    (["floatingip", "create", "ext", "--port", "vm"], "floatingip.create",
     {"network": "ext", "port": "vm"}),
    (["floatingip", "associate", "f", "vm"], "floatingip.associate",
     {"floatingip": "f", "port": "vm"}),
    (["floatingip", "disassociate", "f"], "floatingip.disassociate", {"floatingip": "f"}),
    (["floatingip", "delete", "f"], "floatingip.delete", {"floatingip": "f"}),
    (["host", "list"], "host.list", {}),
    (["agent", "list"], "agent.list", {}),
])
def test_commands_map_to_management_requests(argv, rpc, rpc_args):
    assert parse(*argv) == (rpc, rpc_args)


def test_a_bad_command_line_is_one_error_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        ctl.main(["router", "add-route", "r1", "10.9.0.0/24"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NEXTHOP" in err


def test_missing_config_file_is_one_clear_error(capsys, tmp_path):
    assert ctl.main(["--config-file", str(tmp_path / "none.conf"), "host", "list"]) == 1
    assert capsys.readouterr().err.strip() == \
        f"dvrctl: error: config file {tmp_path / 'none.conf'} does not exist"


def test_lists_print_as_tables_and_json_keeps_neutron_names():
    rows = [{"host": "compute1", "agent_modes": ["dvr"], "alive": True,
             "mac_address": "fa:16:3f:77:86:3e", "agents": []}]
    text = output.render("host", rows, as_json=False)
    assert "| host     | agent modes | alive | dvr mac           |" in text
    assert "| compute1 | dvr         | yes   | fa:16:3f:77:86:3e |" in text
    assert json.loads(output.render("host", rows, as_json=True)) == rows


def test_show_prints_field_value_pairs():
    text = output.render("port", {"id": "p1", "fixed_ips": [
        {"ip_address": "10.0.0.5", "subnet_id": "s"}]}, as_json=False)
    assert "| fixed_ips | 10.0.0.5 |" in text and "| id        | p1       |" in text
