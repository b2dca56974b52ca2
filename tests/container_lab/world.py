"""What a container-lab test does besides the namespace lab's world (tests/lab/world.py,
the same on both backends: everything goes through the Lab facade, dvrctl and the
hosts' network namespaces): the `dvr-lab` command, and waits sized for containers."""

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
