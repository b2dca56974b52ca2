"""The lab as a whole: bring it up, take it down, look at it, poke it.

State lives in /run/dvr-lab/lab.json: the hosts, the PIDs of what was started, the VMs,
the directories made on the machine. ``down`` works from that file and from the fixed
names of layout.py, so it also cleans up after a crashed or half-finished ``up``.

Two backends make the hosts: namespaces (netns_hosts.py; the lab starts each daemon and
holds its PID) and systemd containers (container_hosts.py; systemd in each container runs
the daemons, so there the facade hands the daemons' life to the backend). VMs, dvrctl,
the probes and the demo work the same on both. The state says which backend is up.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess

from dvr_agent.lab import fabric, layout, services, vms
from dvr_agent.lab.container_hosts import PREFIX as CONTAINERS_PREFIX
from dvr_agent.lab.container_hosts import ContainerHosts
from dvr_agent.lab.layout import HostSpec
from dvr_agent.lab.netns_hosts import NamespaceHosts, kill_namespace_members
from dvr_agent.lab.ovs import HostOvs
from dvr_agent.lab.procs import Daemon, LabError, is_running


def backend_named(name: str, state: dict | None = None):
    """A backend by name; a lab that is up keeps the container names it was made with."""
    if name == ContainerHosts.name:
        return ContainerHosts((state or {}).get("containers", CONTAINERS_PREFIX))
    if name == NamespaceHosts.name:
        return NamespaceHosts()
    raise LabError(f"no backend {name!r} (backends: {', '.join(layout.BACKENDS)})")


class Lab:
    def __init__(self, backend=None, progress=print) -> None:
        self.say = progress
        self.state = self._load()
        # the lab's own if one is up; else $DVR_LAB_BACKEND, so that the scenario tests
        # (tests/lab) run unchanged on either backend
        self.backend = backend or backend_named(self.state.get(
            "backend", os.environ.get("DVR_LAB_BACKEND", NamespaceHosts.name)), self.state)

    # ------------------------------------------------------------ state

    @staticmethod
    def _load() -> dict:
        try:
            with open(layout.state_file()) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return {}

    def save(self) -> None:
        tmp = layout.state_file() + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f, indent=1, sort_keys=True)
        os.replace(tmp, layout.state_file())

    @property
    def hosts(self) -> list[HostSpec]:
        return [HostSpec.from_json(h) for h in self.state.get("hosts", [])]

    def host(self, name: str) -> HostSpec:
        for host in self.hosts:
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.hosts) or "none: run `dvr-lab up`"
        raise LabError(f"no lab host {name!r} (hosts: {known})")

    @property
    def in_containers(self) -> bool:
        """Hosts are systemd containers: their daemons are systemd's, not ours by PID."""
        return isinstance(self.backend, ContainerHosts)

    def ovs(self, host: HostSpec):
        if self.in_containers:
            return self.backend.ovs(host)
        return HostOvs(self.backend, host)

    # ------------------------------------------------------------ up and down

    def up(self, hosts_text: str = layout.DEFAULT_HOSTS) -> None:
        if self.in_containers:
            self.backend.require_tools()
        else:
            fabric.require_tools()
        hosts = layout.parse_hosts(hosts_text)
        if self.hosts and ([h.to_json() for h in hosts] != self.state["hosts"] or
                           self.state.get("backend", NamespaceHosts.name) != self.backend.name):
            raise LabError("a lab with other hosts or another backend is up: "
                           "`dvr-lab down` first")
        fabric.ensure_base_dir()
        self.state = self._load()
        self.state["backend"] = self.backend.name
        self.state["hosts"] = [h.to_json() for h in hosts]
        self.state.setdefault("created_dirs", [])
        self.state.setdefault("vms", {})
        self.save()
        if self.in_containers:
            self.backend.up(hosts, self.state, self.say, self.save)
            self.save()
            self.say("lab up: `dvr-lab status`, `dvr-lab exec HOST -- CMD`, `podman ps`")
            return
        self.say("fabric: underlay 192.0.2.0/24, external segment 203.0.113.0/24")
        fabric.ensure_machine_dirs(self.state["created_dirs"])
        fabric.ensure_fabric()
        fabric.ensure_endpoint(layout.CONTROLLER_NS, "u-controller", layout.UNDERLAY_BRIDGE,
                               f"{layout.CONTROLLER_IP}/{layout.UNDERLAY.prefixlen}")
        fabric.ensure_endpoint(layout.UPSTREAM_NS, "x-upstream", layout.EXTERNAL_SEGMENT,
                               f"{layout.UPSTREAM_IP}/{layout.EXTERNAL.prefixlen}")
        self.save()
        for host in hosts:
            self.say(f"host {host.name} ({host.mode}): namespaces, Open vSwitch, "
                     f"br-phy {host.underlay_ip}")
            fabric.ensure_host_wires(host)
            self.backend.create(host)
            ovs = self.ovs(host)
            ovs.start()
            ovs.wire_bridges()
        for host in hosts:
            self.ovs(host).learn_underlay(hosts)
        self.say("controller: RabbitMQ (own user and vhost) and dvr-server on SQLite")
        services.start_broker(self.state)
        self.save()
        services.start_server(self.state)
        self.save()
        for host in hosts:
            self.say(f"dvr-agent on {host.name}")
            services.start_agent(self.backend, host, self.state)
            self.save()
        self.say("lab up: `dvr-lab status`, `dvr-lab exec HOST -- CMD`, `dvr-lab dvrctl ...`")

    def down(self) -> None:
        """Stop everything started (by PID), remove every namespace, mount and directory."""
        self.state = self._load()
        for name in list(self.state.get("vms", {})):
            vm = self.state["vms"].pop(name)
            vms.delete(self.backend, None, vm, server=False)
        if self.in_containers:
            self.backend.down(self.state)
        else:
            for host in self.hosts:
                services.stop_agent(host, self.state)
                with contextlib.suppress(LabError):
                    self.ovs(host).stop()
            services.stop_server(self.state)
            services.stop_broker(self.state)
            for host in self.hosts:
                self.backend.destroy(host)
        self._remove_namespaces()
        fabric.remove_machine_dirs(self.state.get("created_dirs", []))
        self.state = {}
        fabric.release_base_dir()

    def _remove_namespaces(self) -> None:
        """Every lab-* namespace, after killing what still runs in it (a crashed up)."""
        names = [n for n in fabric.NAMESPACES.list() if layout.is_lab_namespace(n)]
        inodes = set()
        for name in names:
            with contextlib.suppress(OSError):
                inodes.add(os.stat(f"/run/netns/{name}").st_ino)
        kill_namespace_members(inodes)
        for name in names:
            fabric.delete_namespace(name)

    # ------------------------------------------------------------ looking and poking

    def status(self) -> dict:
        if self.in_containers:
            return {"up": bool(self.hosts), **self.backend.status(self.hosts),
                    "vms": self.state.get("vms", {})}

        def daemon(key: str) -> dict:
            data = self.state.get(key)
            running = bool(data) and is_running(Daemon.from_json(data))
            return {"running": running, "pid": data["pid"] if data else None}

        hosts = []
        for host in self.hosts:
            hosts.append({"name": host.name, "mode": host.mode,
                          "underlay_ip": str(host.underlay_ip),
                          "agent": daemon(f"agent:{host.name}"),
                          "ovs": [d.pid for d in self.ovs(host).daemons()]})
        return {"up": bool(self.hosts), "hosts": hosts, "broker": daemon("broker"),
                "server": daemon("server"), "vms": self.state.get("vms", {})}

    def exec_argv(self, target: str, argv: list[str]) -> list[str]:
        if self.in_containers and target in ("upstream", "controller"):
            return self.backend.exec_argv(target, argv)
        if target == "upstream":
            return ["nsenter", f"--net=/run/netns/{layout.UPSTREAM_NS}", "--", *argv]
        if target == "controller":
            return [*services.IN_CONTROLLER, *argv]
        return self.backend.command(self.host(target), argv)

    def exec(self, target: str, argv: list[str]) -> int:
        return subprocess.run(self.exec_argv(target, argv)).returncode

    def logs(self, target: str) -> str:
        """A host's agent log, or the server's (``controller``): the file the lab's
        daemons write on namespaces, the journal of their units in containers."""
        return self.backend.logs(None if target in ("controller", "server")
                                 else self.host(target))

    def server_state_dir(self) -> str:
        """dvr-server's state_path (its SQLite database) as this machine sees it."""
        return self.backend.server_state_dir()

    # ------------------------------------------------------------ VMs

    def vm_boot(self, name: str, host: str, network: str, ip: str | None = None) -> dict:
        vm = vms.boot(self.backend, self.host(host), name, network, ip)
        self.state.setdefault("vms", {})[name] = vm
        self.save()
        return vm

    def vm(self, name: str) -> dict:
        vm = self.state.get("vms", {}).get(name)
        if vm is None:
            raise LabError(f"no VM {name!r} (`dvr-lab status` lists them)")
        return vm

    def vm_delete(self, name: str) -> None:
        vm = self.vm(name)
        vms.delete(self.backend, self.host(vm["host"]), vm)
        del self.state["vms"][name]
        self.save()

    def vm_migrate(self, name: str, host: str) -> dict:
        vm = self.vm(name)
        moved = vms.migrate(self.backend, self.host(vm["host"]), self.host(host), vm)
        self.state["vms"][name] = moved
        self.save()
        return moved

    def vm_exec(self, name: str, argv: list[str], capture: bool = False):
        self.vm(name)
        return subprocess.run(vms.command(name, argv), text=True, capture_output=capture)

    # ------------------------------------------------------------ faults and restarts

    def agent(self, action: str, host_name: str, mode: str | None = None) -> None:
        """Stop, start, restart or kill a host's agent; ``mode`` changes its agent_mode
        on the way (what an operator does to turn a compute into ``dvr_no_external``)."""
        host = self.host(host_name)
        if mode is not None and mode != host.mode:
            if action not in ("start", "restart"):
                raise LabError("--mode needs `agent start` or `agent restart`")
            layout.check_mode(host.name, mode)
            self.state["hosts"] = [dict(h, mode=mode) if h["name"] == host.name else h
                                   for h in self.state["hosts"]]
            self.save()
            host = self.host(host_name)
        self.backend.agent(host, action, self.state)
        self.save()

    def server_restart(self) -> None:
        if self.in_containers:
            self.backend.server_restart()
            return
        services.stop_server(self.state)
        services.start_server(self.state)
        self.save()

    def broker(self, action: str) -> None:
        if self.in_containers:
            self.backend.broker(action)
            return
        if action == "stop":
            services.stop_broker(self.state)
        else:
            services.start_broker(self.state)
        self.save()
