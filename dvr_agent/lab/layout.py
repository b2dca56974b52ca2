"""The lab's shape: hosts, addresses, names and paths, decided in one place.

Everything the lab makes is named here, so ``down`` can find all of it again, even after
a crashed ``up``: namespaces ``lab-*``, devices ``u-<host>`` / ``x-<host>`` on the
fabric, state under /run/dvr-lab (its own private tmpfs; $DVR_LAB_DIR if set: two labs
must not share one, since `down` unmounting it there detaches it in every mount
namespace that shares /run). Addresses are the documentation ranges and exist only
inside the lab's namespaces: 192.0.2.0/24 is the
underlay (VXLAN between hosts, RPC to the controller), 203.0.113.0/24 the external
network with the upstream gateway at .1, the lab's "internet".
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass

from dvr_agent.lab.procs import LabError
from dvr_agent.rpc import protocol

# A second lab can run beside the first with its own prefix and directory (the tests do).
BASE_DIR = os.environ.get("DVR_LAB_DIR", "/run/dvr-lab")
PREFIX = os.environ.get("DVR_LAB_PREFIX", "lab-")
UNDERLAY = ipaddress.IPv4Network("192.0.2.0/24")
CONTROLLER_IP = ipaddress.IPv4Address("192.0.2.2")
FIRST_HOST_IP = 10
EXTERNAL = ipaddress.IPv4Network("203.0.113.0/24")
UPSTREAM_IP = ipaddress.IPv4Address("203.0.113.1")
PHYSNET = "physnet1"
EXTERNAL_BRIDGE = "br-ex"
DEFAULT_HOSTS = "network:dvr_snat,compute1:dvr,compute2:dvr"
MODES = (protocol.AGENT_MODE_DVR, protocol.AGENT_MODE_DVR_SNAT,
         protocol.AGENT_MODE_DVR_NO_EXTERNAL)
BACKENDS = ("namespaces", "containers")  # netns_hosts.py, container_hosts.py
_HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,11}$")  # u-<host> must fit in 15 characters


@dataclass(frozen=True)
class HostSpec:
    name: str
    mode: str
    index: int

    @property
    def underlay_ip(self) -> ipaddress.IPv4Address:
        return UNDERLAY.network_address + FIRST_HOST_IP + self.index

    @property
    def underlay_mac(self) -> str:
        return "02:00:c0:00:02:%02x" % (FIRST_HOST_IP + self.index)

    @property
    def netns(self) -> str:
        return PREFIX + self.name

    @property
    def dir(self) -> str:
        return os.path.join(BASE_DIR, "hosts", self.name)

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    def to_json(self) -> dict:
        return {"name": self.name, "mode": self.mode, "index": self.index}

    @classmethod
    def from_json(cls, data: dict) -> HostSpec:
        return cls(str(data["name"]), str(data["mode"]), int(data["index"]))


def parse_hosts(text: str) -> tuple[HostSpec, ...]:
    """``network:dvr_snat,compute1:dvr`` -> host specs; a bad entry is a LabError."""
    hosts: list[HostSpec] = []
    for i, entry in enumerate(e.strip() for e in text.split(",") if e.strip()):
        name, sep, mode = entry.partition(":")
        if not sep or not _HOST_NAME.match(name):
            raise LabError(f"--hosts: {entry!r} is not NAME:MODE with NAME like compute1 "
                           f"(a-z, 0-9, '-', at most 12 characters)")
        check_mode(name, mode, "--hosts: ")
        if name in ("fabric", "controller", "upstream") or name in {h.name for h in hosts}:
            raise LabError(f"--hosts: the name {name!r} is taken")
        hosts.append(HostSpec(name, mode, i))
    if not hosts:
        raise LabError("--hosts: no hosts given")
    if not any(h.mode == protocol.AGENT_MODE_DVR_SNAT for h in hosts):
        raise LabError("--hosts: one host must be the network node (dvr_snat) for SNAT")
    return tuple(hosts)


def check_mode(name: str, mode: str, context: str = "") -> None:
    if mode not in MODES:
        raise LabError(f"{context}mode {mode!r} of {name} is not one of {', '.join(MODES)}")


FABRIC_NS = PREFIX + "fabric"
CONTROLLER_NS = PREFIX + "controller"
UPSTREAM_NS = PREFIX + "upstream"
UNDERLAY_BRIDGE = "br-underlay"
EXTERNAL_SEGMENT = "br-external"


def vm_netns(name: str) -> str:
    return f"{PREFIX}vm-{name}"


def controller_path(*parts: str) -> str:
    return os.path.join(BASE_DIR, "controller", *parts)


def state_file() -> str:
    return os.path.join(BASE_DIR, "lab.json")


def is_lab_namespace(name: str) -> bool:
    return name.startswith(PREFIX)
