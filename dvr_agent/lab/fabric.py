"""The wires between lab hosts: the underlay, the external segment, the controller, upstream.

A ``lab-fabric`` namespace holds two Linux bridges with no uplink: ``br-underlay`` (every
host's eth0, and the controller, on 192.0.2.0/24) and ``br-external`` (every host's eth1,
and the upstream gateway on 203.0.113.1: the lab's "internet"). No lab packet can leave
the lab's namespaces.

Every veth end gets its tx checksum offload turned off: Open vSwitch's userspace
datapath reads veths through AF_PACKET and loses the "checksum not computed yet" mark,
so TCP from the controller or a VM would arrive with bad checksums (testbed pitfall 3).
"""

from __future__ import annotations

import contextlib
import os
import shutil

from pyroute2 import IPRoute

from dvr_agent.drivers import ethtool
from dvr_agent.drivers.namespaces import Namespaces
from dvr_agent.drivers.netlink import Netlink
from dvr_agent.lab import layout
from dvr_agent.lab.layout import HostSpec
from dvr_agent.lab.netns_hosts import HOST_RUN_DIRS
from dvr_agent.lab.procs import LabError, run
from dvr_agent.state import Address, Route

NAMESPACES = Namespaces(owned=layout.is_lab_namespace)


MOUNTED_HERE = ".mounted-by-dvr-lab"


def ensure_base_dir() -> None:
    """/run/dvr-lab as a private tmpfs: ``unshare --mount=FILE`` refuses shared mounts.

    If something else already made it a mount point (the isolated test runner does), it
    is used as it is and only emptied by ``down``.
    """
    os.makedirs(layout.BASE_DIR, exist_ok=True)
    if not _is_mount_point(layout.BASE_DIR):
        run(["mount", "-t", "tmpfs", "-o", "mode=700", "dvr-lab", layout.BASE_DIR])
        run(["mount", "--make-private", layout.BASE_DIR])
        open(os.path.join(layout.BASE_DIR, MOUNTED_HERE), "w").close()


def release_base_dir() -> None:
    if os.path.exists(os.path.join(layout.BASE_DIR, MOUNTED_HERE)):
        run(["umount", "-l", layout.BASE_DIR])
        with contextlib.suppress(OSError):
            os.rmdir(layout.BASE_DIR)
    elif os.path.isdir(layout.BASE_DIR):
        for entry in os.listdir(layout.BASE_DIR):
            path = os.path.join(layout.BASE_DIR, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)


def _is_mount_point(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def _bridge(ns: str, name: str) -> None:
    with IPRoute(netns=ns, flags=0) as ipr:
        if not ipr.link_lookup(ifname=name):
            ipr.link("add", ifname=name, kind="bridge")
        ipr.link("set", ifname=name, state="up")
        ipr.link("set", ifname="lo", state="up")


def _attach(ns: str, port: str, bridge: str) -> None:
    with IPRoute(netns=ns, flags=0) as ipr:
        master = ipr.link_lookup(ifname=bridge)[0]
        ipr.link("set", ifname=port, master=master, state="up")


def ensure_fabric() -> None:
    NAMESPACES.create(layout.FABRIC_NS)
    _bridge(layout.FABRIC_NS, layout.UNDERLAY_BRIDGE)
    _bridge(layout.FABRIC_NS, layout.EXTERNAL_SEGMENT)


def _wire(fabric_end: str, bridge: str, ns: str, inner: str, mac: str | None = None) -> None:
    """A veth from the fabric's ``bridge`` to ``inner`` in ``ns``, both ends up, tx off."""
    fabric = Netlink(layout.FABRIC_NS)
    try:
        fabric.veth_add(fabric_end, inner, ns)
    finally:
        fabric.close()
    _attach(layout.FABRIC_NS, fabric_end, bridge)
    ethtool.tx_checksum_off(layout.FABRIC_NS, fabric_end)
    with Netlink(ns) as inside:
        inside.link_set(inner, mac=mac, up=True)
        inside.link_set("lo", up=True)
    ethtool.tx_checksum_off(ns, inner)


def ensure_endpoint(ns: str, fabric_end: str, bridge: str, cidr: str,
                    gateway: str | None = None) -> None:
    """A namespace on one segment with an address (the controller, upstream, VMs)."""
    NAMESPACES.create(ns)
    _wire(fabric_end, bridge, ns, "eth0")
    with Netlink(ns) as inside:
        inside.addr_add(Address("eth0", cidr))
        if gateway:
            inside.route_replace(Route("0.0.0.0/0", gateway=gateway, device="eth0"))


def ensure_host_wires(host: HostSpec) -> None:
    """eth0 on the underlay and eth1 on the external segment, inside the host."""
    NAMESPACES.create(host.netns)
    _wire(f"u-{host.name}", layout.UNDERLAY_BRIDGE, host.netns, "eth0", host.underlay_mac)
    _wire(f"x-{host.name}", layout.EXTERNAL_SEGMENT, host.netns, "eth1")


def ensure_machine_dirs(created: list[str]) -> None:
    """Mount points the hosts bind onto; those made here are listed in ``created``."""
    for path in HOST_RUN_DIRS:
        if not os.path.isdir(path):
            os.makedirs(path)
            created.append(path)


def remove_machine_dirs(created: list[str]) -> None:
    for path in created:
        with contextlib.suppress(OSError):
            os.rmdir(path)  # only if still empty: never remove what someone put there


def delete_namespace(name: str) -> None:
    if NAMESPACES.exists(name):
        NAMESPACES.delete(name)


def require_tools() -> None:
    """The programs the lab runs; a clear message if `make setup` was not run."""
    missing = [tool for tool in ("ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl",
                                 "nsenter", "unshare", "nft", "ip")
               if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
               is None]
    if missing:
        raise LabError(f"missing programs: {', '.join(missing)} (run `make setup` as root)")
    if os.geteuid() != 0:
        raise LabError("the lab needs root (namespaces, Open vSwitch)")
