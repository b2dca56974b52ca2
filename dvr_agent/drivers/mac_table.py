"""Forget what a bridge's MAC learning table holds for a MAC: ovs-vswitchd's ``fdb/del``.

Why: br-int switches a VM's frames with NORMAL, by the MAC it learned. When a VM moves
here from another host (a live migration), br-int may have learned the VM's MAC behind
patch-tun while the VM lived elsewhere (its broadcasts came in over the tunnels). Until
the VM itself sends a frame here, that entry wins: the local qr- port (a floating IP's
DNAT, routed east-west traffic) and local VMs send the VM's frames back into the tunnel,
to the host it left. Measured in the lab: 0.3 to 1.3 s of a migrated VM's floating IP
answering nothing, whatever the agent had already wired, until the VM's first IPv6
multicast report re-taught br-int. Forgetting the entry when the VIF is wired makes the
next frame flood on the network's VLAN, which reaches the VM at its new port; its answer
teaches br-int the right port. (Neutron relies on the hypervisor's post-migration RARP.)

Talks ovs-vswitchd's unixctl JSON-RPC through python-ovs's stream and jsonrpc classes;
python-ovs's own ``UnixctlClient`` waits without a bound, and a busy ovs-vswitchd must
not stall the agent's loop, so the request/reply loop here carries a deadline.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable

import ovs.jsonrpc
import ovs.poller
import ovs.stream
import ovs.timeval

from dvr_agent.drivers.errors import DriverError

LOG = logging.getLogger(__name__)
TIMEOUT_MS = 2000  # for the whole batch: connecting, and every reply
Entry = tuple[str, int, str]  # (the port the MAC is at now, its VLAN, the MAC)


class MacTable:
    """ovs-vswitchd's MAC tables, reached through its control socket in ``rundir``."""

    def __init__(self, rundir: str) -> None:
        self._rundir = rundir

    def forget(self, bridge: str, entries: Iterable[Entry]) -> list[Entry]:
        """Forget whatever ``bridge`` learned for each (port, VLAN, MAC); the entries done.

        ovs-vswitchd 3.1's ``fdb/del`` deletes static entries only, and ``fdb/add`` turns
        a learned entry into a static one at the given port: the two in turn leave no
        entry at all, so learning takes over again from the next frame. Raises
        DriverError when ovs-vswitchd cannot be asked (not running, no answer in time);
        an entry it refuses (no such bridge or port) is not in the result.
        """
        entries = list(entries)
        if not entries:
            return []
        deadline = ovs.timeval.msec() + TIMEOUT_MS
        conn = self._connect(deadline)
        try:
            return [(port, vlan, mac) for port, vlan, mac in entries
                    if self._call(conn, "fdb/add", [bridge, port, str(vlan), mac], deadline)
                    and self._call(conn, "fdb/del", [bridge, str(vlan), mac], deadline)]
        finally:
            conn.close()

    def _connect(self, deadline: int) -> ovs.jsonrpc.Connection:
        pidfile = os.path.join(self._rundir, "ovs-vswitchd.pid")
        try:
            with open(pidfile) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError) as exc:
            raise DriverError(f"ovs-vswitchd's pidfile {pidfile}: {exc}") from None
        path = os.path.join(self._rundir, f"ovs-vswitchd.{pid}.ctl")
        error, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(f"unix:{path}"),
                                                     max(0, deadline - ovs.timeval.msec()))
        if error:
            raise DriverError(f"cannot reach ovs-vswitchd at {path}: {os.strerror(error)}")
        return ovs.jsonrpc.Connection(stream)

    @staticmethod
    def _call(conn: ovs.jsonrpc.Connection, command: str, args: list[str],
              deadline: int) -> bool:
        """One unixctl command: True if it succeeded, False if ovs-vswitchd refused it."""
        request = ovs.jsonrpc.Message.create_request(command, args)
        error = conn.send(request)
        while not error:
            conn.run()
            error, reply = conn.recv()
            if error == errno.EAGAIN:
                if ovs.timeval.msec() >= deadline:
                    raise DriverError(f"ovs-vswitchd did not answer {command} within "
                                      f"{TIMEOUT_MS} ms")
                poller = ovs.poller.Poller()
                conn.wait(poller)
                conn.recv_wait(poller)
                poller.timer_wait_until(deadline)
                poller.block()
                error = 0
                continue
            if error == 0 and reply.id == request.id:
                if reply.error is not None:
                    LOG.debug("ovs-vswitchd: %s %s: %s", command, " ".join(args), reply.error)
                    return False
                return True
        raise DriverError(f"ovs-vswitchd {command}: {os.strerror(error)}")
