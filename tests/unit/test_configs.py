"""Sample configs are what oslo-config-generator makes today; secrets stay secret; the units
run the installed configs; a bad agent config is refused with one line naming the option."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys

import pytest
from oslo_config import cfg

from dvr_agent.agent import config as agent_config
from dvr_agent.server import config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
SAMPLE = os.path.join(ROOT, "etc", "dvr-server.conf")


@pytest.mark.parametrize("program", ["dvr-server", "dvr-agent"])
def test_sample_config_matches_the_generator(tmp_path, program):
    out = tmp_path / f"{program}.conf"
    generator = os.path.join(os.path.dirname(sys.executable), "oslo-config-generator")
    subprocess.run([generator, "--config-file",
                    os.path.join(ROOT, "etc", "oslo-config-generator", f"{program}.conf"),
                    "--output-file", str(out)], check=True, cwd=ROOT, capture_output=True)
    with open(os.path.join(ROOT, "etc", f"{program}.conf")) as f:
        assert out.read_text() == f.read(), (
            f"etc/{program}.conf is stale: run `oslo-config-generator --config-file "
            f"etc/oslo-config-generator/{program}.conf`")


def test_sample_documents_every_server_option():
    with open(SAMPLE) as f:
        sample = f.read()
    for group, opts in config.list_opts():
        assert f"[{group}]" in sample
        for opt in opts:
            assert f"#{opt.dest} = " in sample, opt.dest


def test_database_connection_is_secret():
    [connection] = [o for o in config.DATABASE_OPTS if o.dest == "connection"]
    assert connection.secret


def test_systemd_unit_runs_the_server_on_the_installed_config():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(os.path.join(ROOT, "systemd", "dvr-server.service"))
    assert unit["Service"]["ExecStart"].endswith(
        "dvr-server --config-file /etc/dvr-agent/dvr-server.conf")
    assert unit["Service"]["Type"] == "simple"
    assert unit["Service"]["NoNewPrivileges"] == "yes"


def _agent_conf(tmp_path, **ovs) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    agent_config.register(conf)
    conf([], project="dvr-agent")
    conf.set_override("transport_url", "rabbit://u:p@192.0.2.2:5672/")
    conf.set_override("state_path", str(tmp_path / "state"))
    conf.set_override("local_ip", "192.0.2.11", "ovs")
    for key, value in ovs.items():
        conf.set_override(key, value, "ovs")
    return conf


def test_a_good_agent_config_passes(tmp_path):
    agent_config.check(_agent_conf(tmp_path, bridge_mappings=["physnet1:br-ex"]))


@pytest.mark.parametrize("ovs,message", [
    ({"local_ip": None}, "[ovs] local_ip is not set"),
    ({"local_ip": "2001:db8::1"}, "is not an IPv4 address"),
    ({"local_ip": "compute1"}, "is not an IPv4 address"),
    ({"bridge_mappings": ["physnet1"]}, "is not physnet:bridge"),
    ({"bridge_mappings": ["physnet1:br-ex", "physnet1:br-ex2"]}, "names 'physnet1' twice"),
    ({"bridge_mappings": ["physnet1:this-is-far-too-long"]}, "is not a valid device name"),
    ({"integration_bridge": "br-tun"}, "bridges must be distinct"),
    ({"bridge_mappings": ["physnet1:br-external1"]}, "too long for its patch port"),
])
def test_bad_agent_config_is_refused_naming_the_option(tmp_path, ovs, message):
    with pytest.raises(agent_config.ConfigError, match=message.replace("[", r"\[")):
        agent_config.check(_agent_conf(tmp_path, **ovs))


def test_unwritable_state_path_is_refused(tmp_path):
    conf = _agent_conf(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    conf.set_override("state_path", str(blocker / "state"))
    with pytest.raises(agent_config.ConfigError, match=r"state_path .* cannot be created"):
        agent_config.check(conf)


def test_missing_transport_url_is_refused(tmp_path):
    conf = _agent_conf(tmp_path)
    conf.set_override("transport_url", None)
    with pytest.raises(agent_config.ConfigError, match="transport_url is not set"):
        agent_config.check(conf)


def test_the_agent_exits_with_one_line_on_a_bad_config(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("[DEFAULT]\ntransport_url = rabbit://u:p@h:5672/\n"
                    f"state_path = {tmp_path}\n[ovs]\nlocal_ip = 300.1.1.1\n")
    done = subprocess.run([sys.executable, "-m", "dvr_agent.agent.main", "--config-file",
                           str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "dvr-agent: [ovs] local_ip '300.1.1.1' is not an IPv4 address"]


def test_agent_unit_waits_for_ready_and_keeps_only_the_capabilities_it_uses():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(os.path.join(ROOT, "systemd", "dvr-agent.service"))
    service = unit["Service"]
    assert service["Type"] == "notify" and service["WatchdogSec"]
    assert "--config-file /etc/dvr-agent/dvr-agent.conf" in service["ExecStart"]
    assert set(service["CapabilityBoundingSet"].split()) == {
        "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_NET_RAW", "CAP_DAC_OVERRIDE"}
    # a private mount namespace would hide the agent's /run/netns from the host
    assert not {"ProtectSystem", "PrivateTmp", "ProtectHome"} & set(service)


def test_network_node_drop_in_reads_the_dvr_snat_config_after_the_common_one():
    drop_in = configparser.ConfigParser(strict=False, interpolation=None)
    drop_in.read(os.path.join(ROOT, "systemd", "dvr-agent.service.d", "network-node.conf"))
    assert "/etc/dvr-agent/network-node.conf" in drop_in["Service"]["Environment"]
    node = configparser.ConfigParser()
    node.read(os.path.join(ROOT, "etc", "network-node.conf"))
    assert node["agent"]["agent_mode"] == "dvr_snat"


@pytest.mark.parametrize("line,message", [
    ("transport_url = nonsense://x", "transport_url is not usable"),
    ("host = ", "host is empty"),
    ("transport_url = rabbit://u:top%2Fsecret@h:5672/", "password for h contains '/'"),
])
def test_the_agent_refuses_a_bad_transport_or_host_in_one_line(tmp_path, line, message):
    path = tmp_path / "bad.conf"
    path.write_text("[DEFAULT]\ntransport_url = rabbit://u:p@h:5672/\n"
                    f"state_path = {tmp_path}\n{line}\n[ovs]\nlocal_ip = 192.0.2.1\n")
    done = subprocess.run([sys.executable, "-m", "dvr_agent.agent.main", "--config-file",
                           str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr


@pytest.mark.parametrize("url,message", [
    ("nonsense://x", "no messaging driver 'nonsense'"),
    ("rabbit://u:top%2Fsecret@h:5672/", "password for h contains '/'"),
])
def test_the_server_refuses_a_bad_transport_in_one_line_without_the_password(
        tmp_path, url, message):
    path = tmp_path / "bad.conf"
    path.write_text(f"[DEFAULT]\ntransport_url = {url}\nstate_path = {tmp_path}\n")
    done = subprocess.run([sys.executable, "-m", "dvr_agent.server.main", "--config-file",
                           str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert "secret" not in done.stderr


def test_no_shell_is_ever_built_from_data():
    """Every subprocess gets an argv list; nothing runs through a shell."""
    offenders = []
    for folder, _, files in os.walk(os.path.join(ROOT, "dvr_agent")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name)) as f:
                    text = f.read()
                if "shell=True" in text or "os.system(" in text or "os.popen(" in text:
                    offenders.append(name)
    assert offenders == []
