"""What the units' hardening really gives, and what it must not take.

The agent's unit limits capabilities and system calls but gives the agent no mount
namespace of its own: the namespaces it creates are bind mounts in /run/netns that the
host must see. The test with a private mount namespace shows why (on a node of its own,
since that agent's data plane is meant to break). `systemd-analyze security` is checked
against the numbers the README reports, so the README stays true.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dvr_agent import names
from dvr_agent.lab.podman import Podman
from tests.systemd.node import Node, sh, wait_for

README = Path(__file__).resolve().parents[2] / "README.md"
# capability numbers (linux/capability.h)
CAPABILITIES = {"CAP_DAC_OVERRIDE": 1, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
                "CAP_SYS_ADMIN": 21}
PRIVATE_MOUNTS = """[Service]
ProtectSystem=strict
ReadWritePaths=/run/netns /var/lib/dvr-agent
"""


def _proc_status(node: Node, pid: int) -> dict[str, str]:
    text = node.box.exec(["cat", f"/proc/{pid}/status"])
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _capabilities(mask: str) -> set[str]:
    value = int(mask, 16)
    named = {name for name, bit in CAPABILITIES.items() if value & (1 << bit)}
    assert value == sum(1 << CAPABILITIES[n] for n in named), f"unexpected bits in {mask}"
    return named


def test_agent_runs_with_its_four_capabilities_and_a_system_call_filter(node, east_west):
    status = _proc_status(node, node.agent_pid())
    assert _capabilities(status["CapBnd"]) == set(CAPABILITIES)
    assert _capabilities(status["CapEff"]) == set(CAPABILITIES)
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2"  # a filter is installed


def test_agent_shares_the_hosts_mount_namespace_so_its_namespaces_are_the_hosts(
        node, east_west):
    pid = node.agent_pid()
    agent_ns = node.box.exec(["readlink", f"/proc/{pid}/ns/mnt"])
    assert agent_ns == node.box.exec(["readlink", "/proc/1/ns/mnt"])
    qrouter = names.qrouter_ns_name(node.ctl("router", "show", "ew")["id"])
    links = node.box.exec(["ip", "netns", "exec", qrouter, "ip", "-br", "link"])
    assert links.count("qr-") == 2, links


def test_server_runs_as_its_own_user_without_capabilities(node):
    pid = int(node.show("MainPID", unit="dvr-server")["MainPID"])
    status = _proc_status(node, pid)
    uid = node.box.exec(["id", "-u", "dvr"]).strip()
    assert status["Uid"].split()[:2] == [uid, uid]
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"
    owner = node.box.exec(["stat", "-c", "%U %a", "/var/lib/dvr-server/dvr-server.sqlite"])
    assert owner.split()[0] == "dvr", owner


def _readme_exposure() -> dict[str, str]:
    """`| dvr-agent.service | 4.7 OK | ...` rows of the README's hardening table."""
    rows = re.findall(r"^\| `(dvr-[a-z]+\.service)` \| ([0-9.]+ [A-Z]+) \|", README.read_text(),
                      re.MULTILINE)
    return dict(rows)


def test_systemd_analyze_security_is_what_the_readme_reports(node):
    reported = _readme_exposure()
    assert set(reported) == {"dvr-agent.service", "dvr-server.service"}, reported
    for unit, claim in reported.items():
        out = node.box.exec(["systemd-analyze", "security", "--no-pager", unit])
        measured = re.search(rf"Overall exposure level for {unit}: ([0-9.]+ [A-Z]+)", out)
        assert measured and measured.group(1) == claim, f"{unit}: {out[-300:]}"


@pytest.fixture
def spare_node(podman_session: str) -> Iterator[Node]:
    """A node whose data plane a test may break: its own container, removed after."""
    box = Podman().start(f"{podman_session}spare", hostname="node1")
    try:
        the_node = Node(box)
        the_node.install_controller()
        the_node.install_node()
        yield the_node
    finally:
        box.remove()


def test_a_private_mount_namespace_would_hide_the_routers_and_lose_them_on_stop(spare_node):
    """Why the unit has no ProtectSystem=: with it, the agent works in a mount namespace
    of its own, the host sees empty files in /run/netns, and a stop takes the routers."""
    node = spare_node
    node.box.write("/etc/systemd/system/dvr-agent.service.d/private-mounts.conf",
                   PRIVATE_MOUNTS)
    node.box.systemctl("daemon-reload")
    node.box.exec(["mkdir", "-p", "/run/netns"])  # ReadWritePaths= needs it to exist
    node.box.systemctl("start", "dvr-agent")
    pid = node.agent_pid()
    assert node.box.exec(["readlink", f"/proc/{pid}/ns/mnt"]) != node.box.exec(
        ["readlink", "/proc/1/ns/mnt"])
    node.ctl("network", "create", "pm")
    node.ctl("subnet", "create", "pm", "10.0.9.0/24", "--name", "pm-sub")
    router = node.ctl("router", "create", "pm")
    node.ctl("router", "add-interface", "pm", "pm-sub")
    vm = node.boot_vm("pm-vm", "pm")
    qrouter = names.qrouter_ns_name(router["id"])
    wait_for("the router answering its VM (as seen from the VM)",
             lambda: node.ping(vm, vm.gateway))

    inside = node.box.exec(["nsenter", "-t", str(pid), "-m", "ip", "netns", "exec", qrouter,
                            "ip", "-br", "link"])
    assert "qr-" in inside
    on_host = sh(node.box, f"ip netns exec {qrouter} true 2>&1; echo exit=$?", check=False)
    assert "Invalid argument" in on_host and "exit=255" in on_host, on_host

    node.box.systemctl("stop", "dvr-agent")
    assert not node.ping(vm, vm.gateway, count=3), "the router outlived the agent's stop"
    tap = names.veth_host_name("qr-" + next(
        p["id"] for p in node.ctl("port", "list") if p["device_owner"].endswith(
            "router_interface_distributed")))
    gone = node.box.exec(["ip", "link", "show", tap], check=False)
    assert gone == "", f"the router's port should have died with its namespace: {gone}"
