"""The lab's control plane and agents: RabbitMQ and dvr-server in the controller namespace,
and one dvr-agent per host, each started from the installed package with its own config.

The broker has its own user and vhost (guest only works from localhost, and a real cloud
never uses it). Everything is stopped by the PID recorded when it was started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time

from dvr_agent.lab import layout
from dvr_agent.lab.layout import HostSpec
from dvr_agent.lab.procs import Daemon, LabError, comm, is_running, run, spawn, stop
from dvr_agent.lab.rabbitmq import EPMD, RABBITMQ_SERVER, BrokerError, RabbitMQNode

IN_CONTROLLER = ("nsenter", f"--net=/run/netns/{layout.CONTROLLER_NS}", "--")
AMQP_PORT = 5672
BROKER_USER = "dvr"
BROKER_VHOST = "dvr"


def program(name: str) -> str:
    """A console script of this package: beside the running interpreter (the venv)."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    found = here if os.access(here, os.X_OK) else shutil.which(name)
    if not found:
        raise LabError(f"{name}: not found (run `make setup`)")
    return found


def broker_node() -> RabbitMQNode:
    return RabbitMQNode(host=str(layout.CONTROLLER_IP), base_dir=layout.controller_path("rabbitmq"),
                        amqp_port=AMQP_PORT, dist_port=25672, epmd_port=4369,
                        name="dvrlab@localhost", prefix=IN_CONTROLLER)


def start_broker(state: dict) -> str:
    """RabbitMQ in the controller namespace; returns the agents' transport_url.

    Started again after a stop (fault tests), it keeps its database: the user, vhost
    and password the agents know stay valid.
    """
    node = broker_node()
    if not is_running(Daemon.from_json(state.get("broker", {"pid": 0, "comm": "-"}))):
        os.makedirs(node.base_dir, exist_ok=True)
        node._write_config()
        log = os.path.join(node.base_dir, "stdout.log")
        state["epmd"] = spawn([*IN_CONTROLLER, EPMD, "-port", str(node.epmd_port)], log,
                              "epmd", env=node.env()).to_json()
        state["broker"] = spawn([*IN_CONTROLLER, RABBITMQ_SERVER], log, "rabbitmq-server",
                                env=node.env()).to_json()
        deadline = time.monotonic() + 90
        while True:  # await_startup fails at once until the node registered with epmd
            try:
                node.ctl("await_startup", timeout=30)
                break
            except BrokerError:
                if time.monotonic() > deadline:
                    raise LabError(f"RabbitMQ did not start; see {log}") from None
                time.sleep(0.5)
    if "transport_url" not in state:
        password = secrets.token_hex(12)
        node.ctl("add_vhost", BROKER_VHOST)
        node.ctl("add_user", BROKER_USER, password)
        node.ctl("set_permissions", "-p", BROKER_VHOST, BROKER_USER, ".*", ".*", ".*")
        node.ctl("delete_user", "guest")
        state["transport_url"] = node.url(BROKER_USER, password, BROKER_VHOST)
    return state["transport_url"]


def stop_broker(state: dict) -> None:
    for name in ("broker", "epmd"):
        if name in state:
            stop(Daemon.from_json(state.pop(name)), timeout=30)


def server_conf_path() -> str:
    return layout.controller_path("dvr-server.conf")


def start_server(state: dict) -> None:
    if is_running(Daemon.from_json(state.get("server", {"pid": 0, "comm": "-"}))):
        return
    conf = server_conf_path()
    with open(conf, "w") as f:
        f.write(f"[DEFAULT]\nhost = controller\ntransport_url = {state['transport_url']}\n"
                f"state_path = {layout.controller_path('server')}\n"
                f"log_file = {layout.controller_path('dvr-server.log')}\n"
                "agent_down_time = 20\n")
    os.chmod(conf, 0o600)
    os.makedirs(layout.controller_path("server"), exist_ok=True)
    server = program("dvr-server")
    run([*IN_CONTROLLER, server, "--config-file", conf, "db", "upgrade"])
    state["server"] = spawn([*IN_CONTROLLER, server, "--config-file", conf],
                            layout.controller_path("dvr-server.stdout"), "dvr-server").to_json()
    wait_for_log(layout.controller_path("dvr-server.log"), "serving", 60, "dvr-server")


def stop_server(state: dict) -> None:
    if "server" in state:
        stop(Daemon.from_json(state.pop("server")), timeout=30)


def dvrctl_argv(args: list[str]) -> list[str]:
    return [*IN_CONTROLLER, program("dvrctl"), "--config-file", server_conf_path(), *args]


def dvrctl(args: list[str], capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(dvrctl_argv(args), text=True, capture_output=capture,
                          stdin=subprocess.DEVNULL)


def agent_config(host: HostSpec, transport_url: str, extra_default: str = "") -> str:
    """A lab host's dvr-agent.conf; ``extra_default`` lines go to [DEFAULT]."""
    return f"""[DEFAULT]
host = {host.name}
transport_url = {transport_url}
{extra_default}
[agent]
agent_mode = {host.mode}
report_interval = 5
resync_interval = 8

[ovs]
local_ip = {host.underlay_ip}
datapath_type = netdev
ovs_use_veth = true
bridge_mappings = {layout.PHYSNET}:{layout.EXTERNAL_BRIDGE}
"""


def write_agent_config(host: HostSpec, transport_url: str) -> None:
    """The agent's config as a real host would have it (inside: /run/dvr-agent/)."""
    with open(host.path("agent", "dvr-agent.conf"), "w") as f:
        f.write(agent_config(host, transport_url, "state_path = /run/dvr-agent/state\n"
                                                  "log_file = /run/dvr-agent/dvr-agent.log\n"))
    os.chmod(host.path("agent", "dvr-agent.conf"), 0o600)


def start_agent(backend, host: HostSpec, state: dict, wait: bool = True) -> None:
    key = f"agent:{host.name}"
    if is_running(Daemon.from_json(state.get(key, {"pid": 0, "comm": "-"}))):
        return
    write_agent_config(host, state["transport_url"])
    log = host.path("agent", "dvr-agent.log")
    mark = os.path.getsize(log) if os.path.exists(log) else 0
    argv = backend.command(host, [program("dvr-agent"), "--config-file",
                                  "/run/dvr-agent/dvr-agent.conf"])
    state[key] = spawn(argv, host.path("log", "dvr-agent.stdout"), "dvr-agent").to_json()
    if wait:
        wait_for_log(log, "ready in", 120, f"dvr-agent on {host.name}", since=mark,
                     daemon=Daemon.from_json(state[key]))


def stop_agent(host: HostSpec, state: dict, sig: int | None = None) -> None:
    key = f"agent:{host.name}"
    if key in state:
        daemon = Daemon.from_json(state.pop(key))
        if sig is None:
            stop(daemon, timeout=15)
        else:
            stop(daemon, timeout=15, sig=sig)


def wait_for_log(path: str, text: str, timeout: float, what: str, since: int = 0,
                 daemon: Daemon | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                f.seek(since)
                if text in f.read():
                    return
        except FileNotFoundError:
            pass
        if daemon is not None and not is_running(daemon):
            now = comm(daemon.pid)
            raise LabError(f"{what} exited while starting"
                           f"{f' (pid {daemon.pid} is now {now!r})' if now else ''}; see {path}")
        time.sleep(0.1)
    raise LabError(f"{what} not ready after {timeout:.0f} s; see {path}")
