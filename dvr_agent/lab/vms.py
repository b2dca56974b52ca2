"""VMs of the lab, as the compute service would make them.

A VM is a network namespace with an eth0 whose other end (``tap`` + 11 characters of the
port id, Nova's name) is plugged into its host's br-int with Nova's external_ids
(iface-id, attached-mac, iface-status, vm-uuid). The port itself is created on the
server first, bound to the host: from there the server and the agent do the rest.
"""

from __future__ import annotations

import json

from dvr_agent import names
from dvr_agent.drivers import ethtool
from dvr_agent.drivers.netlink import Netlink
from dvr_agent.lab import fabric, layout
from dvr_agent.lab.layout import HostSpec
from dvr_agent.lab.procs import LabError, run
from dvr_agent.lab.services import dvrctl
from dvr_agent.state import Address, Route

VM_MTU = 1450  # 1500 on the underlay, less the 50 bytes of VXLAN


def server_json(*args: str):
    done = dvrctl(["--json", *args], capture=True)
    if done.returncode != 0:
        raise LabError(f"dvrctl {' '.join(args)}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def boot(backend, host: HostSpec, name: str, network: str, ip: str | None) -> dict:
    if not names.valid_device_name(f"vm-{name}") or "/" in name:
        raise LabError(f"VM name {name!r}: use letters, digits and '-' (at most 12)")
    ns = layout.vm_netns(name)
    if fabric.NAMESPACES.exists(ns):
        raise LabError(f"a VM named {name} exists already")
    args = ["port", "create", network, "--host", host.name, "--name", name]
    if ip:
        args += ["--ip", ip]
    port = server_json(*args)
    fixed = port["fixed_ips"][0]
    subnet = server_json("subnet", "show", fixed["subnet_id"])
    tap = names.veth_host_name("qr-" + port["id"])
    try:
        fabric.NAMESPACES.create(ns)
        with Netlink(ns) as vm:
            vm.veth_add("eth0", tap, backend.netns_path(host))
            vm.link_set("eth0", mac=port["mac_address"], mtu=VM_MTU, up=True)
            vm.link_set("lo", up=True)
            vm.addr_add(Address("eth0", f"{fixed['ip_address']}/{subnet['cidr'].split('/')[1]}"))
            if subnet.get("gateway_ip"):
                vm.route_replace(Route("0.0.0.0/0", gateway=subnet["gateway_ip"], device="eth0"))
        ethtool.tx_checksum_off(ns, "eth0")
        run(backend.command(host, ["ip", "link", "set", tap, "mtu", str(VM_MTU), "up"]))
        run(backend.command(host, ["ethtool", "-K", tap, "tx", "off"]))
        run(backend.command(host, [
            "ovs-vsctl", "--timeout=20", "--may-exist", "add-port", "br-int", tap, "--",
            "set", "Interface", tap, f"external_ids:iface-id={port['id']}",
            f"external_ids:attached-mac={port['mac_address']}",
            "external_ids:iface-status=active", f"external_ids:vm-uuid={name}"]))
    except Exception:
        delete(backend, host, {"name": name, "tap": tap, "port_id": port["id"]})
        raise
    return {"name": name, "host": host.name, "network": network, "port_id": port["id"],
            "ip": fixed["ip_address"], "mac": port["mac_address"], "tap": tap,
            "gateway": subnet.get("gateway_ip")}


def delete(backend, host: HostSpec | None, vm: dict, server: bool = True) -> None:
    """Unplug, remove the namespace (its eth0 takes the tap with it), delete the port."""
    if host is not None:
        run(backend.command(host, ["ovs-vsctl", "--timeout=20", "--if-exists", "del-port",
                                   "br-int", vm["tap"]]), check=False)
    fabric.delete_namespace(layout.vm_netns(vm["name"]))
    if server:
        dvrctl(["port", "delete", vm["port_id"]], capture=True)


def command(name: str, argv: list[str]) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{layout.vm_netns(name)}", "--", *argv]
