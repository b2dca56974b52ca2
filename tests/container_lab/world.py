"""What a container-lab test does: topology through dvrctl, VMs, looking at hosts, the CLI.

Everything goes through the lab's own interfaces (the Lab facade, dvrctl, `dvr-lab`), the
same on both backends; only the hosts underneath are systemd containers.
"""

from __future__ import annotations

import subprocess
import sys

from tests.lab import world as lab_world


def wait_for(what: str, check, timeout: float = 60.0, interval: float = 0.2):
    """The namespace lab's wait, with the longer defaults containers need to boot."""
    return lab_world.wait_for(what, check, timeout, interval)


def dvr_lab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The `dvr-lab` command, as a user runs it (it finds the lab from its state)."""
    return subprocess.run([sys.executable, "-m", "dvr_agent.lab.main", *args],
                          capture_output=True, text=True, timeout=timeout)


class ContainerLab(lab_world.Topology):
    """What a container-lab test looks at: hosts are containers, reached through the Lab."""

    def boot(self, host: str, network: dict) -> dict:
        return self.lab.vm_boot(self.name("vm"), host, network["id"])

    def on(self, host: str, *argv: str) -> str:
        done = subprocess.run(self.lab.exec_argv(host, list(argv)), capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, f"{' '.join(argv)} on {host}: {done.stderr.strip()}"
        return done.stdout

    def namespaces(self, host: str) -> set[str]:
        return {line.split()[0] for line in self.on(host, "ip", "netns").splitlines() if line}

    def hosts_with(self, namespace: str) -> set[str]:
        return {h.name for h in self.lab.hosts if namespace in self.namespaces(h.name)}

    def ping(self, vm: dict, address: str, count: int = 1) -> bool:
        return self.lab.vm_exec(vm["name"], ["ping", "-c", str(count), "-W", "1", "-i", "0.2",
                                             address], capture=True).returncode == 0
