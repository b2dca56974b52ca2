"""Privileged systemd containers from the project image, through podman.

A container here is a whole host: systemd as PID 1 (``--systemd=always``), the image's
Open vSwitch and, once configured, dvr-agent, dvr-server and RabbitMQ as systemd
services. Programs run in it with ``podman exec``; its network namespace is reachable
from the machine at /proc/<pid of its systemd>/ns/net.

The podman options are those measured in ../shared/reference/privileged-containers.md:
runc with the cgroupfs manager (crun refuses this host's hybrid cgroups) and explicit
ulimits: podman's default nofile limit is above this host's hard limit (20000), so runc
cannot set it; 1024 is too few for a thousand OVS ports. ``make image``
(container/build-image.sh) and ``make container-test`` use the same.

Podman creates the machine's end of a container network (a bridge, veths) in the network
namespace it runs in; ``Podman(netns=...)`` runs it in another one than the caller's.

tests/isolated.py mounts a fresh sysfs on /sys so that /sys/class/net shows the test
namespace's devices; that sysfs has no cgroup hierarchies under /sys/fs/cgroup, and runc
refuses to create a container without them ("no cgroup mount found in mountinfo").
``mount_cgroups_like_the_machine`` mounts the machine's own hierarchies again, exactly as
PID 1 has them, in such a private mount namespace; where they are mounted it does nothing.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from dvr_agent.lab.procs import LabError, run

PODMAN = ("podman", "--runtime", "runc", "--cgroup-manager=cgroupfs")
ULIMITS = ("--ulimit", "nofile=16384:16384", "--ulimit", "nproc=4096:4096")
IMAGE = os.environ.get("DVR_IMAGE", "localhost/dvr-agent:latest")
BOOT_TIMEOUT = 90.0
CGROUP_ROOT = "/sys/fs/cgroup"


def _machine_cgroup_mounts() -> list[tuple[str, str, str]]:
    """(mount point, fstype, options) of PID 1's mounts under /sys/fs/cgroup, in order."""
    mounts = []
    with open("/proc/1/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4]
            if point != CGROUP_ROOT and not point.startswith(CGROUP_ROOT + "/"):
                continue
            after = fields[fields.index("-") + 1:]
            fstype, options = after[0], after[2]
            options = ",".join(o for o in options.split(",") if o not in ("rw", "ro"))
            mounts.append((point, fstype, options))
    return mounts


def mount_cgroups_like_the_machine() -> None:
    """Give this mount namespace the machine's cgroup mounts, if it has none; idempotent."""
    with open("/proc/self/mountinfo") as f:
        if any(line.split()[4] == CGROUP_ROOT for line in f):
            return
    for point, fstype, options in _machine_cgroup_mounts():
        os.makedirs(point, exist_ok=True)
        argv = ["mount", "-t", fstype]
        if options:
            argv += ["-o", options]
        run([*argv, fstype, point])


@dataclass(frozen=True)
class Podman:
    """``podman`` with this machine's options, in network namespace ``netns`` if given."""

    netns: str | None = None

    def argv(self, *args: str) -> list[str]:
        enter = ["nsenter", f"--net={self.netns}", "--"] if self.netns else []
        return [*enter, *PODMAN, *args]

    def __call__(self, *args: str, check: bool = True, timeout: float = 120.0,
                 input: str | None = None) -> str:
        return run(self.argv(*args), check=check, timeout=timeout, input=input)

    def succeeds(self, *args: str) -> bool:
        """``podman ARGS`` exits 0 (``image exists``, ``container exists``, ...)."""
        return subprocess.run(self.argv(*args), capture_output=True,
                              timeout=60).returncode == 0

    def require_image(self, image: str = IMAGE) -> None:
        if not self.succeeds("image", "exists", image):
            raise LabError(f"no image {image}: build it with `make image`")

    def container(self, name: str) -> SystemdContainer:
        return SystemdContainer(name, self)

    def start(self, name: str, *, networks: Sequence[str] = ("none",),
              hostname: str | None = None, image: str = IMAGE) -> SystemdContainer:
        """Run ``image`` with systemd as PID 1; return once the boot has finished.

        ``networks`` are podman ``--network`` values (``none``,
        ``NET:interface_name=eth0,ip=ADDR,mac=MAC``). Without ``interface_name`` podman
        names the interfaces in the order of the networks' *names*, not of the options.
        """
        self.require_image(image)
        argv = ["run", "--detach", "--name", name, "--hostname", hostname or name,
                "--privileged", "--systemd=always", *ULIMITS]
        for network in networks:
            argv += ["--network", network]
        self(*argv, image)
        container = self.container(name)
        try:
            container.wait_booted()
        except BaseException:
            container.remove()
            raise
        return container

    def containers(self, prefix: str) -> list[str]:
        """Names of the containers (running or not) that start with ``prefix``."""
        names = self("ps", "--all", "--format", "{{.Names}}", check=False).split()
        return [n for n in names if n.startswith(prefix)]

    def remove(self, *names: str) -> None:
        """Stop (systemd shuts down cleanly, 10 s at most) and remove, all at once.

        A container still there afterwards (podman can fail a removal while the
        container shuts down; seen once in CI, which then found it left in storage) is
        killed and removed; if even that fails, the error says what podman said.
        """
        if not names:
            return
        first = subprocess.run(self.argv("rm", "--force", "--time", "10", *names),
                               capture_output=True, text=True, timeout=120)
        left = [name for name in names if self.succeeds("container", "exists", name)]
        if left:
            print(f"podman rm left {', '.join(left)} (exit {first.returncode}: "
                  f"{first.stderr.strip()}); killing it", file=sys.stderr)
            self("rm", "--force", "--time", "0", *left, timeout=120)

    def network_create(self, name: str, subnet: str) -> None:
        """An internal network: a bridge with no address, no route out, no DNS server.

        Its gateway is named, as the subnet's last address: the bridge never takes it
        (internal), but with podman's CNI backend (Debian 12's podman without netavark)
        the IPAM reserves the gateway, by default the first address, and then refuses
        to give a container the lab's upstream router at .1 ("requested ip ... is
        subnet's gateway"). netavark takes the same option.
        """
        gateway = ipaddress.ip_network(subnet).broadcast_address - 1
        self("network", "create", "--internal", "--disable-dns", "--subnet", subnet,
             "--gateway", str(gateway), name)

    def network_remove(self, name: str) -> None:
        self("network", "rm", "--force", name, check=False)

    def networks(self, prefix: str) -> list[str]:
        return [n for n in self("network", "ls", "--format", "{{.Name}}", check=False).split()
                if n.startswith(prefix)]


@dataclass(frozen=True)
class SystemdContainer:
    """One container, known by its name."""

    name: str
    podman: Podman = field(default_factory=Podman)

    def exists(self) -> bool:
        return self.podman.succeeds("container", "exists", self.name)

    def running(self) -> bool:
        return self.podman("inspect", "--format", "{{.State.Running}}", self.name,
                           check=False).strip() == "true"

    def wait_booted(self, timeout: float = BOOT_TIMEOUT) -> str:
        """systemd's verdict once the boot is done: ``running`` (or ``degraded``).

        Right after ``podman run`` systemd may not listen yet, and ``systemctl`` fails at
        once instead of waiting: so ask again until it answers.
        """
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.exec(["systemctl", "is-system-running", "--wait"], check=False,
                              timeout=timeout).strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.1)
        raise LabError(f"container {self.name}: systemd is {state or 'not up'} after "
                       f"{timeout:.0f} s")

    # ------------------------------------------------------------ inside

    def exec_argv(self, argv: Sequence[str], *, interactive: bool = False) -> list[str]:
        return self.podman.argv("exec", *(["--interactive"] if interactive else []),
                                self.name, *argv)

    def exec(self, argv: Sequence[str], *, check: bool = True, timeout: float = 120.0,
             input: str | None = None) -> str:
        return run(self.exec_argv(argv, interactive=input is not None), check=check,
                   timeout=timeout, input=input)

    def systemctl(self, *args: str, check: bool = True, timeout: float = 120.0) -> str:
        return self.exec(["systemctl", "--no-pager", *args], check=check, timeout=timeout)

    def write(self, path: str, text: str, mode: int = 0o644, owner: str = "root:root") -> None:
        """A file inside the container, as an operator would write it (no shell)."""
        user, _, group = owner.partition(":")
        self.exec(["install", "-D", "-m", f"{mode:o}", "-o", user, "-g", group or user,
                   "/dev/stdin", path], input=text)

    def journal(self, *units: str) -> str:
        argv = ["journalctl", "--no-pager", "-o", "cat"]
        for unit in units:
            argv += ["-u", unit]
        return self.exec(argv)

    def wait_active(self, unit: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.systemctl("is-active", unit, check=False).strip()
            if state == "active":
                return
            if state == "failed":
                break
            time.sleep(0.2)
        raise LabError(f"{unit} in {self.name} is {state} (journalctl -u {unit}):\n"
                       f"{self.journal(unit)[-2000:]}")

    # ------------------------------------------------------------ from the machine

    @property
    def pid(self) -> int:
        """The machine's PID of the container's systemd."""
        return int(self.podman("inspect", "--format", "{{.State.Pid}}", self.name).strip())

    @property
    def root(self) -> str:
        """The container's root filesystem on the machine: its overlay's merged directory,
        a real path (/proc/<pid>/root is a link to "/" for programs that resolve links,
        such as SQLite, which would then open the machine's file instead)."""
        return self.podman("inspect", "--format", "{{.GraphDriver.Data.MergedDir}}",
                           self.name).strip()

    def remove(self) -> None:
        """Stop and remove; no error if it is gone already."""
        self.podman.remove(self.name)
