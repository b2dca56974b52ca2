"""Hosts as systemd containers: the production-like lab, in the shape of OVN's fake-multinode.

Each host is a privileged container from localhost/dvr-agent:latest with systemd as PID 1:
Open vSwitch and dvr-agent run as the image's systemd units, with the agent's config in
/etc/dvr-agent/ and, on a network node, the network-node drop-in, exactly as the README
installs a real host. The controller is a container with RabbitMQ and dvr-server as
services; the upstream gateway is a container too. Two internal podman networks are the
wires: the underlay (eth0 of every host and the controller) and the external segment
(eth1 of every host and the upstream), with the namespace lab's addresses (layout.py).

Podman runs in the lab's fabric namespace (lab-fabric), so its bridges and veth ends live
there: the machine's own network may use the same documentation ranges (podman refuses a
network that overlaps a route of the namespace it runs in), and no lab packet touches it.
Each container's network namespace is also named in /run/netns (``ip netns attach``) as
the namespace lab names its own: lab-<host>, lab-controller, lab-upstream; and the
fabric's end of each wire is named as there too (u-<host>, x-<host>). So what reaches a
host through its network namespace works unchanged on both backends: VMs plugged into a
host, dvrctl in the controller's network, the probes from the upstream, a capture.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable

from pyroute2 import IPRoute

from dvr_agent.lab import fabric, layout, services
from dvr_agent.lab.layout import HostSpec
from dvr_agent.lab.ovs import HostOvs
from dvr_agent.lab.podman import Podman, SystemdContainer, mount_cgroups_like_the_machine
from dvr_agent.lab.procs import LabError, run

PREFIX = os.environ.get("DVR_LAB_CONTAINERS", "dvr-lab")
SERVER_CONF = "/etc/dvr-agent/dvr-server.conf"
AGENT_CONF = "/etc/dvr-agent/dvr-agent.conf"
SERVER_STATE = "/var/lib/dvr-server"  # dvr-server.service's StateDirectory
DROP_IN = "/etc/systemd/system/dvr-agent.service.d/network-node.conf"
NETWORK_NODE_DROP_IN = "/usr/share/dvr-agent/network-node.conf"
OVS_UNITS = ("ovsdb-server", "ovs-vswitchd")
SERVING = "serving on"  # dvr-server's log line once its RPC servers run
# `dvr-lab agent ACTION` as systemctl does it; kill is a crash, so Restart= applies
AGENT_ACTIONS = {"stop": ["stop"], "start": ["start"], "restart": ["restart"],
                 "kill": ["kill", "--signal=SIGKILL"]}


class ContainerHosts:
    """The containers backend of the lab: hosts, controller and upstream as containers."""

    name = "containers"

    def __init__(self, prefix: str = PREFIX) -> None:
        self.prefix = prefix
        self.podman = Podman(netns=f"/run/netns/{layout.FABRIC_NS}")

    def box(self, target: str) -> SystemdContainer:
        return self.podman.container(f"{self.prefix}-{target}")

    def _network(self, segment: str) -> str:
        return f"{self.prefix}-{segment}"

    # ------------------------------------------------------------ the host backend

    def command(self, host: HostSpec, argv: list[str]) -> list[str]:
        """``argv`` as run inside ``host`` (podman exec)."""
        return self.box(host.name).exec_argv(argv)

    def netns_path(self, host: HostSpec) -> str:
        return f"/run/netns/{host.netns}"

    def create(self, host: HostSpec) -> None:
        """The host's container with eth0 on the underlay, eth1 on the external segment."""
        underlay = (f"{self._network('underlay')}:interface_name=eth0,ip={host.underlay_ip},"
                    f"mac={host.underlay_mac}")
        external = f"{self._network('external')}:interface_name=eth1"
        box = self._container(host.name, host.netns, [underlay, external],
                              {"eth0": f"u-{host.name}", "eth1": f"x-{host.name}"})
        # the underlay address belongs on br-phy, and br-ex takes eth1 (ovs.py says why);
        # podman's own addresses for them are only its bookkeeping
        for device in ("eth0", "eth1"):
            box.exec(["ip", "addr", "flush", "dev", device])
        for unit in OVS_UNITS:
            box.wait_active(unit)

    def destroy(self, host: HostSpec) -> list[int]:
        self.podman.remove(self.box(host.name).name)
        return []

    def _container(self, target: str, netns: str, networks: list[str],
                   fabric_ends: dict[str, str]) -> SystemdContainer:
        """Start (or find running) the container of ``target``; name its netns ``netns``
        and the fabric's end of each of its interfaces as ``fabric_ends`` says."""
        box = self.box(target)
        if not box.running():
            box.remove()  # one that exited, e.g. after a reboot
            box = self.podman.start(box.name, networks=networks, hostname=target)
            for inner, name in fabric_ends.items():
                peer = int(box.exec(["cat", f"/sys/class/net/{inner}/iflink"]))
                _rename_fabric_end(peer, name)
        # every interface computes its own checksums (fabric.py, testbed pitfall 3)
        for device in box.exec(["ls", "/sys/class/net"]).split():
            if device.startswith("eth"):
                box.exec(["ethtool", "-K", device, "tx", "off"])
        if not os.path.exists(f"/run/netns/{netns}"):
            run(["ip", "netns", "attach", netns, str(box.pid)])
        return box

    # ------------------------------------------------------------ the whole lab

    def require_tools(self) -> None:
        missing = [t for t in ("podman", "nsenter", "ip") if shutil.which(
            t, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None]
        if missing:
            raise LabError(f"missing programs: {', '.join(missing)} (run `make setup`)")
        if os.geteuid() != 0:
            raise LabError("the lab needs root (privileged containers, namespaces)")
        mount_cgroups_like_the_machine()  # under tests/isolated.py (podman.py says why)
        Podman().require_image()

    def up(self, hosts: list[HostSpec], state: dict, say: Callable[[str], None],
           save: Callable[[], None]) -> None:
        """Networks, controller, upstream, hosts with OVS wired, agents: idempotent."""
        state["containers"] = self.prefix
        fabric.NAMESPACES.create(layout.FABRIC_NS)
        for segment, subnet in (("underlay", layout.UNDERLAY), ("external", layout.EXTERNAL)):
            if not self.podman.networks(self._network(segment)):
                self.podman.network_create(self._network(segment), str(subnet))
        save()
        say("controller: a container with RabbitMQ and dvr-server as systemd services")
        self._container("controller", layout.CONTROLLER_NS,
                        [f"{self._network('underlay')}:interface_name=eth0,"
                         f"ip={layout.CONTROLLER_IP}"], {"eth0": "u-controller"})
        self._start_controller(state)
        save()
        self._container("upstream", layout.UPSTREAM_NS,
                        [f"{self._network('external')}:interface_name=eth0,"
                         f"ip={layout.UPSTREAM_IP}"], {"eth0": "x-upstream"})
        for host in hosts:
            say(f"host {host.name} ({host.mode}): a container with Open vSwitch, "
                f"br-phy {host.underlay_ip}")
            self.create(host)
            self.ovs(host).wire_bridges()
        for host in hosts:
            self.ovs(host).learn_underlay(hosts)
        for host in hosts:
            say(f"dvr-agent on {host.name} (systemctl start dvr-agent)")
            self._start_agent(host, state)

    def _start_controller(self, state: dict) -> None:
        box = self.box("controller")
        box.systemctl("enable", "--now", "rabbitmq-server")
        if "transport_url" not in state:
            password = secrets.token_hex(12)
            for argv in (["add_vhost", services.BROKER_VHOST],
                         ["add_user", services.BROKER_USER, password],
                         ["set_permissions", "-p", services.BROKER_VHOST,
                          services.BROKER_USER, ".*", ".*", ".*"],
                         ["delete_user", "guest"]):
                box.exec(["rabbitmqctl", "--quiet", *argv])
            state["transport_url"] = (f"rabbit://{services.BROKER_USER}:{password}@"
                                      f"{layout.CONTROLLER_IP}:{services.AMQP_PORT}/"
                                      f"{services.BROKER_VHOST}")
        conf = (f"[DEFAULT]\nhost = controller\ntransport_url = {state['transport_url']}\n"
                "agent_down_time = 20\n")
        box.write(SERVER_CONF, conf, mode=0o640, owner="root:dvr")
        if box.systemctl("is-active", "dvr-server", check=False).strip() != "active":
            self._server_serving(lambda: box.systemctl("enable", "--now", "dvr-server"))
        # dvrctl on the machine, in the controller's network (services.dvrctl)
        os.makedirs(layout.controller_path(), exist_ok=True)
        with open(services.server_conf_path(), "w") as f:
            f.write(conf)
        os.chmod(services.server_conf_path(), 0o600)

    def _start_agent(self, host: HostSpec, state: dict) -> None:
        self._configure_agent(host, state)
        # Type=notify: this returns once the agent has synced and converged
        self.box(host.name).systemctl("enable", "--now", "dvr-agent", timeout=300)

    def _configure_agent(self, host: HostSpec, state: dict) -> None:
        """The agent's config for ``host.mode``, as an operator sets a host's role: the
        mode in dvr-agent.conf, and on a network node (only there) the README's drop-in."""
        box = self.box(host.name)
        box.write(AGENT_CONF, services.agent_config(host, state["transport_url"]), mode=0o640)
        if host.mode == "dvr_snat":
            drop_in = (f"cmp -s {NETWORK_NODE_DROP_IN} {DROP_IN} || {{ install -D -m 644 "
                       f"{NETWORK_NODE_DROP_IN} {DROP_IN} && systemctl daemon-reload; }}")
        else:
            drop_in = f"test ! -e {DROP_IN} || {{ rm {DROP_IN} && systemctl daemon-reload; }}"
        box.exec(["sh", "-c", drop_in])

    def _server_serving(self, start: Callable[[], object]) -> None:
        """``start()`` dvr-server, then wait until it logs that it serves (Type=simple:
        systemd cannot know when the server's queues exist)."""
        box = self.box("controller")
        before = box.journal("dvr-server").count(SERVING)
        start()
        deadline = time.monotonic() + 60
        while box.journal("dvr-server").count(SERVING) <= before:
            if time.monotonic() > deadline:
                raise LabError("dvr-server not serving after 60 s: "
                               "`dvr-lab exec controller -- journalctl -u dvr-server`")
            time.sleep(0.2)

    def down(self, state: dict) -> None:
        """Remove the containers and the networks (the lab-* names go with the others)."""
        prefix = state.get("containers", self.prefix)
        self.podman.remove(*self.podman.containers(f"{prefix}-"))
        for segment in ("underlay", "external"):
            self.podman.network_remove(f"{prefix}-{segment}")

    # ------------------------------------------------------------ looking and poking

    def unit_status(self, target: str, unit: str) -> dict:
        box = self.box(target)
        if not box.running():
            return {"running": False, "pid": None}
        out = box.systemctl("show", unit, "--property=ActiveState", "--property=MainPID",
                            check=False)
        props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        pid = int(props.get("MainPID", "0") or 0)
        return {"running": props.get("ActiveState") == "active", "pid": pid or None}

    def status(self, hosts: list[HostSpec]) -> dict:
        return {
            "hosts": [{"name": h.name, "mode": h.mode, "underlay_ip": str(h.underlay_ip),
                       "agent": self.unit_status(h.name, "dvr-agent"),
                       "ovs": [self.unit_status(h.name, u)["pid"] for u in OVS_UNITS]}
                      for h in hosts],
            "broker": self.unit_status("controller", "rabbitmq-server"),
            "server": self.unit_status("controller", "dvr-server")}

    def exec_argv(self, target: str, argv: list[str]) -> list[str]:
        """``argv`` in the controller's or the upstream's container."""
        return self.box(target).exec_argv(argv)

    def logs(self, host: HostSpec | None) -> str:
        """The journal of ``host``'s dvr-agent; of dvr-server for None."""
        if host is None:
            return self.box("controller").journal("dvr-server")
        return self.box(host.name).journal("dvr-agent")

    def server_state_dir(self) -> str:
        """The unit's StateDirectory (the default state_path) in the controller's root
        filesystem, as the machine sees it."""
        return self.box("controller").root + SERVER_STATE

    def agent(self, host: HostSpec, action: str, state: dict) -> None:
        """`systemctl ACTION dvr-agent`; a start writes its config for ``host.mode``
        first (dvr-lab agent restart HOST --mode dvr_no_external)."""
        if action in ("start", "restart"):
            self._configure_agent(host, state)
        self.box(host.name).systemctl(*AGENT_ACTIONS[action], "dvr-agent", timeout=300)

    def server_restart(self) -> None:
        self._server_serving(lambda: self.box("controller").systemctl("restart", "dvr-server"))

    def broker(self, action: str) -> None:
        self.box("controller").systemctl(action, "rabbitmq-server", timeout=300)

    def ovs(self, host: HostSpec) -> SystemdOvs:
        return SystemdOvs(self, host)


def _rename_fabric_end(index: int, name: str) -> None:
    """Give podman's veth end in the fabric the namespace lab's name (u-<host>, x-<host>):
    a capture on a host's wire is then the same command on both backends. A link is
    renamed only while down.

    Hairpin mode goes off too. podman's CNI bridge plugin (Debian 12's podman without
    netavark) turns it on for every port: the bridge sends a host's own flooded frames
    back to it, its br-phy learns its own MAC behind eth0, and Open vSwitch then drops
    the replies meant for it (a host's ARP for the controller went unanswered, and its
    agent never reached RabbitMQ). netavark leaves it off, as the namespace lab does.
    """
    with IPRoute(netns=layout.FABRIC_NS, flags=0) as ipr:
        ipr.link("set", index=index, state="down")
        ipr.link("set", index=index, ifname=name)
        ipr.brport("set", index=index, mode=0)  # IFLA_BRPORT_MODE: hairpin off
        ipr.link("set", index=index, state="up")


class SystemdOvs:
    """A container host's Open vSwitch: Debian's units run it; wiring as in ovs.py."""

    def __init__(self, backend: ContainerHosts, host: HostSpec) -> None:
        self._box = backend.box(host.name)
        self._wiring = HostOvs(backend, host)

    def wire_bridges(self) -> None:
        self._wiring.wire_bridges()

    def learn_underlay(self, peers: list[HostSpec]) -> None:
        self._wiring.learn_underlay(peers)

    def restart_vswitchd(self) -> None:
        """`systemctl restart ovs-vswitchd`, as an operator does: the flows are lost."""
        self._box.systemctl("restart", "ovs-vswitchd", timeout=300)

    def restart_ovsdb(self) -> None:
        self._box.systemctl("restart", "ovsdb-server", timeout=300)

