"""Daemons of the lab: started in a namespace, remembered by PID, stopped by PID.

``dvr-lab up`` returns while the daemons it started keep running, so they are started
in a session of their own with their output in a log file, and their PIDs are written
down. ``dvr-lab down`` (another process, maybe after a crash) stops exactly those PIDs,
after checking that each still runs the program it was started as: the machine may be
shared, and a recycled PID must never be killed. Nothing is ever found by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass


class LabError(RuntimeError):
    """Something the lab needs failed; the message says what and what to do."""


@dataclass(frozen=True)
class Daemon:
    """A started daemon: its PID and what /proc/PID/comm said when it was started."""

    pid: int
    comm: str

    def to_json(self) -> dict:
        return {"pid": self.pid, "comm": self.comm}

    @classmethod
    def from_json(cls, data: dict) -> Daemon:
        return cls(int(data["pid"]), str(data["comm"]))


def comm(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def is_running(daemon: Daemon) -> bool:
    return alive(daemon.pid) and comm(daemon.pid) == daemon.comm


def spawn(argv: Sequence[str], log_path: str, program: str,
          env: dict[str, str] | None = None) -> Daemon:
    """Start ``argv`` detached (own session, stdin closed, output to ``log_path``) and wait
    until its PID runs ``program``: the forked child first carries our own name, then
    nsenter's, and only then the program's — recording any earlier name would make the
    daemon look gone later."""
    name = program[:15]  # /proc/PID/comm holds 15 characters
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 10
    while comm(proc.pid) != name:
        if proc.poll() is not None:
            raise LabError(f"{program} exited at once (code {proc.returncode}); see {log_path}")
        if time.monotonic() > deadline:
            raise LabError(f"{program} did not start within 10 s; see {log_path}")
        time.sleep(0.005)
    return Daemon(proc.pid, name)


def stop(daemon: Daemon, timeout: float = 10.0, sig: int = signal.SIGTERM) -> bool:
    """Stop a daemon we started; False if it was already gone (or the PID was reused)."""
    if not is_running(daemon):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(daemon.pid, sig)
    deadline = time.monotonic() + timeout
    while alive(daemon.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if alive(daemon.pid) and comm(daemon.pid) == daemon.comm:
        with contextlib.suppress(ProcessLookupError):
            os.kill(daemon.pid, signal.SIGKILL)
        while alive(daemon.pid):
            time.sleep(0.02)
    return True


def read_pidfile(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 60.0,
        input: str | None = None, env: dict[str, str] | None = None) -> str:
    """Run a short command; its stdout. A failure names the command and its stderr."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              input=input, env=env,
                              stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(argv)}: timed out after {timeout:.0f} s") from None
    except FileNotFoundError:
        raise LabError(f"{argv[0]}: not found (run `make setup`)") from None
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout
