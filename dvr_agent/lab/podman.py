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
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from dvr_agent.lab.procs import LabError, run

PODMAN = ("podman", "--runtime", "runc", "--cgroup-manager=cgroupfs")
ULIMITS = ("--ulimit", "nofile=16384:16384", "--ulimit", "nproc=4096:4096")
IMAGE = os.environ.get("DVR_IMAGE", "localhost/dvr-agent:latest")
BOOT_TIMEOUT = 90.0


def podman(*args: str, check: bool = True, timeout: float = 120.0,
           input: str | None = None) -> str:
    return run([*PODMAN, *args], check=check, timeout=timeout, input=input)


def succeeds(*args: str) -> bool:
    """``podman ARGS`` exits 0 (``image exists``, ``container exists``, ...)."""
    return subprocess.run([*PODMAN, *args], capture_output=True, timeout=60).returncode == 0


def require_image(image: str = IMAGE) -> None:
    if not succeeds("image", "exists", image):
        raise LabError(f"no image {image}: build it with `make image`")


@dataclass(frozen=True)
class SystemdContainer:
    """One running container, known by its name."""

    name: str

    @classmethod
    def start(cls, name: str, *, networks: Sequence[str] = ("none",),
              hostname: str | None = None, image: str = IMAGE) -> SystemdContainer:
        """Run ``image`` with systemd as PID 1; return once the boot has finished.

        ``networks`` are podman ``--network`` values (``none``, ``NET:ip=ADDR``, ...);
        the first one becomes eth0, the next eth1.
        """
        require_image(image)
        argv = ["run", "--detach", "--name", name, "--hostname", hostname or name,
                "--privileged", "--systemd=always", *ULIMITS]
        for network in networks:
            argv += ["--network", network]
        podman(*argv, image)
        container = cls(name)
        try:
            container.wait_booted()
        except BaseException:
            container.remove()
            raise
        return container

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
        return [*PODMAN, "exec", *(["--interactive"] if interactive else []), self.name,
                *argv]

    def exec(self, argv: Sequence[str], *, check: bool = True, timeout: float = 120.0,
             input: str | None = None) -> str:
        return run(self.exec_argv(argv, interactive=input is not None), check=check,
                   timeout=timeout, input=input)

    def sh(self, script: str, *, check: bool = True, timeout: float = 120.0) -> str:
        return self.exec(["sh", "-c", script], check=check, timeout=timeout)

    def systemctl(self, *args: str, check: bool = True, timeout: float = 120.0) -> str:
        return self.exec(["systemctl", "--no-pager", *args], check=check, timeout=timeout)

    def write(self, path: str, text: str, mode: int = 0o644, owner: str = "root:root") -> None:
        """A file inside the container, as an operator would write it."""
        quoted = shlex.quote(path)
        self.exec(["sh", "-c", f"mkdir -p $(dirname {quoted}) && cat > {quoted} && "
                   f"chmod {mode:o} {quoted} && chown {owner} {quoted}"], input=text)

    def journal(self, *units: str, since: str | None = None) -> str:
        argv = ["journalctl", "--no-pager", "-o", "cat"]
        for unit in units:
            argv += ["-u", unit]
        if since:
            argv += ["--since", since]
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
        return int(podman("inspect", "--format", "{{.State.Pid}}", self.name).strip())

    def netns_path(self) -> str:
        return f"/proc/{self.pid}/ns/net"

    def remove(self) -> None:
        """Stop (systemd shuts down cleanly, 10 s at most) and remove; no error if gone."""
        podman("rm", "--force", "--time", "10", self.name, check=False, timeout=60)


def remove_containers(prefix: str) -> list[str]:
    """Remove every container whose name starts with ``prefix`` (what a crash left)."""
    names = podman("ps", "--all", "--format", "{{.Names}}", check=False).split()
    mine = [n for n in names if n.startswith(prefix)]
    for name in mine:
        SystemdContainer(name).remove()
    return mine


def network_create(name: str, subnet: str) -> None:
    """An internal podman network: a bridge with no route out and no DNS server process."""
    podman("network", "create", "--internal", "--disable-dns", "--subnet", subnet, name)


def network_remove(name: str) -> None:
    podman("network", "rm", "--force", name, check=False)


def networks(prefix: str) -> list[str]:
    return [n for n in podman("network", "ls", "--format", "{{.Name}}", check=False).split()
            if n.startswith(prefix)]
