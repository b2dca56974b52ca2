"""Open vSwitch on a lab host: its own ovsdb-server and ovs-vswitchd, at the default paths.

Inside the host everything lives in /run/openvswitch (the host's private directory:
database, sockets, pidfiles, logs), so ``ovs-vsctl``, ``ovs-ofctl dump-flows br-tun`` and
``ovs-appctl`` work there without options. The underlay address sits on br-phy, not on
eth0 (testbed pitfall 1: with the address on the NIC, tunnelled packets loop back into
OVS and are dropped). br-ex carries eth1 to the external segment; the agent owns its
flows (bridge_mappings physnet1:br-ex).
"""

from __future__ import annotations

import os

from dvr_agent.lab import layout
from dvr_agent.lab.layout import HostSpec
from dvr_agent.lab.procs import Daemon, LabError, comm, read_pidfile, run, stop

RUN = "/run/openvswitch"
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


class HostOvs:
    def __init__(self, backend, host: HostSpec) -> None:
        self._backend = backend
        self.host = host

    def _in_host(self, *argv: str, check: bool = True) -> str:
        return run(self._backend.command(self.host, list(argv)), check=check)

    def vsctl(self, *args: str) -> str:
        return self._in_host("ovs-vsctl", "--timeout=20", *args)

    def _daemon(self, name: str) -> Daemon | None:
        pid = read_pidfile(self.host.path("ovs", f"{name}.pid"))
        if pid is None or comm(pid) != name[:15]:
            return None
        return Daemon(pid, name[:15])

    def start_ovsdb(self) -> None:
        if self._daemon("ovsdb-server"):
            return
        if not os.path.exists(self.host.path("ovs", "conf.db")):
            self._in_host("ovsdb-tool", "create", f"{RUN}/conf.db", SCHEMA)
        self._in_host("ovsdb-server", f"{RUN}/conf.db", f"--remote=punix:{RUN}/db.sock",
                      "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
                      "--pidfile", "--detach", "--no-chdir", "-vconsole:off",
                      f"--log-file={RUN}/ovsdb-server.log")
        self.vsctl("--no-wait", "init")
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".",
                   f"external_ids:system-id={self.host.name}",
                   f"external_ids:hostname={self.host.name}")

    def start_vswitchd(self) -> None:
        if self._daemon("ovs-vswitchd"):
            return
        self._in_host("ovs-vswitchd", "--pidfile", "--detach", "--no-chdir", "-vconsole:off",
                      f"--log-file={RUN}/ovs-vswitchd.log")

    def stop_vswitchd(self) -> None:
        daemon = self._daemon("ovs-vswitchd")
        if daemon:
            stop(daemon)

    def stop_ovsdb(self) -> None:
        daemon = self._daemon("ovsdb-server")
        if daemon:
            stop(daemon)

    def daemons(self) -> list[Daemon]:
        return [d for d in (self._daemon("ovsdb-server"), self._daemon("ovs-vswitchd")) if d]

    def start(self) -> None:
        self.start_ovsdb()
        self.start_vswitchd()

    def stop(self) -> None:
        self.stop_vswitchd()
        self.stop_ovsdb()

    def wire_bridges(self) -> None:
        """br-phy with eth0 and the underlay address, br-ex with eth1 (idempotent)."""
        host = self.host
        self.vsctl("--may-exist", "add-br", "br-phy", "--", "set", "bridge", "br-phy",
                   "datapath_type=netdev", f"other_config:hwaddr={host.underlay_mac}",
                   "--", "--may-exist", "add-port", "br-phy", "eth0")
        cidr = f"{host.underlay_ip}/{layout.UNDERLAY.prefixlen}"
        self._in_host("ip", "link", "set", "br-phy", "up")
        if cidr not in self._in_host("ip", "-o", "addr", "show", "dev", "br-phy"):
            self._in_host("ip", "addr", "add", cidr, "dev", "br-phy")
        self.vsctl("--may-exist", "add-br", layout.EXTERNAL_BRIDGE, "--", "set", "bridge",
                   layout.EXTERNAL_BRIDGE, "datapath_type=netdev", "fail_mode=secure",
                   "protocols=OpenFlow10,OpenFlow11,OpenFlow12,OpenFlow13,OpenFlow14",
                   "--", "--may-exist", "add-port", layout.EXTERNAL_BRIDGE, "eth1")

    def learn_underlay(self, peers: list[HostSpec]) -> None:
        """Static tunnel neighbours: the first VXLAN packet to a peer is not dropped while
        OVS resolves the outer next hop (testbed pitfall 2)."""
        for peer in peers:
            if peer.name != self.host.name:
                self._in_host("ovs-appctl", "tnl/neigh/set", "br-phy", str(peer.underlay_ip),
                              peer.underlay_mac)

    def restart_vswitchd(self) -> None:
        """What an operator's `systemctl restart ovs-vswitchd` does: flows are lost."""
        self.stop_vswitchd()
        self.start_vswitchd()
        if self._daemon("ovs-vswitchd") is None:
            raise LabError(f"ovs-vswitchd on {self.host.name} did not come back")

    def restart_ovsdb(self) -> None:
        self.stop_ovsdb()
        self.start_ovsdb()
