"""Real traffic through the lab, as a user would check it: ping, and who the upstream sees.

"Who the upstream sees" is a tiny TCP server in the upstream namespace that prints the
address a connection comes from: with SNAT it must be the router's gateway address, with
a floating IP the floating IP — never the VM's private address.
"""

from __future__ import annotations

import subprocess
import sys
import time

from dvr_agent.lab import layout
from dvr_agent.lab.procs import LabError

UPSTREAM = ["nsenter", f"--net=/run/netns/{layout.UPSTREAM_NS}", "--"]
LISTEN = ("import socket,sys\n"
          "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
          "s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(30)\n"
          "c, a = s.accept(); print(a[0], flush=True); c.close()\n")
CONNECT = ("import socket,sys,time\n"
           "for i in range(100):\n"
           "    try:\n"
           "        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()\n"
           "        break\n"
           "    except OSError:\n"
           "        time.sleep(0.2)\n"
           "else:\n"
           "    sys.exit(1)\n")


def ping_ok(argv_prefix: list[str], address: str, count: int = 1, wait: float = 1.0) -> bool:
    """``count`` pings answered, each within ``wait`` seconds (a short ``wait`` makes a
    loop of them measure a moment to a fraction of a second, not to the next second)."""
    done = subprocess.run([*argv_prefix, "ping", "-c", str(count), "-W", f"{wait:g}", "-i",
                           "0.2", address], capture_output=True)
    return done.returncode == 0


def wait_ping(lab, vm: str, address: str, timeout: float = 30.0) -> str:
    from dvr_agent.lab.vms import command

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping_ok(command(vm, []), address, count=3):
            return f"{vm} -> {address}: 3 of 3 replies"
        time.sleep(0.2)
    raise LabError(f"{vm} cannot reach {address} after {timeout:.0f} s")


def wait_upstream_ping(lab, address: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping_ok(UPSTREAM, address, count=3):
            return f"upstream -> {address}: 3 of 3 replies"
        time.sleep(0.2)
    raise LabError(f"the upstream cannot reach {address} after {timeout:.0f} s")


def source_seen_upstream(vm: str, port: int = 8080) -> str:
    """Connect from ``vm`` to the upstream; the source address the upstream saw."""
    from dvr_agent.lab.vms import command

    server = subprocess.Popen([*UPSTREAM, sys.executable, "-c", LISTEN,
                               str(layout.UPSTREAM_IP), str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        client = subprocess.run(command(vm, [sys.executable, "-c", CONNECT,
                                             str(layout.UPSTREAM_IP), str(port)]),
                                capture_output=True, text=True, timeout=60)
        out, err = server.communicate(timeout=35)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    if client.returncode != 0 or not out.strip():
        raise LabError(f"{vm} could not connect to the upstream: {err.strip()}")
    return out.strip()


def expect_source(lab, vm: str, expected: str, what: str) -> str:
    seen = source_seen_upstream(vm)
    if seen != expected:
        raise LabError(f"the upstream saw {vm} as {seen}, not {expected} ({what})")
    return f"the upstream sees {seen} ({what})"
