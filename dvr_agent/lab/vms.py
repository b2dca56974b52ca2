"""VMs of the lab, as the compute service would make them.

A VM is a network namespace with an eth0 whose other end (``tap`` + 11 characters of the
port id, Nova's name) is plugged into its host's br-int with Nova's external_ids
(iface-id, attached-mac, iface-status, vm-uuid). The port itself is created on the
server first, bound to the host: from there the server and the agent do the rest. Its
MTU is its network's, as DHCP would tell a real VM. It has no IPv6 (``IPV4_ONLY``): it
sends nothing unless its tests make it.

``migrate`` is a live migration as the compute service does it: the tap leaves the old
host's br-int, the VM (its namespace, addresses and running processes untouched) is
plugged into the new host's, and the port's binding moves (``dvrctl port update --host``).
"""

from __future__ import annotations

import json

from dvr_agent import names
from dvr_agent.drivers import ethtool
from dvr_agent.drivers.netlink import Netlink
from dvr_agent.drivers.sysctl import sysctls_set
from dvr_agent.lab import fabric, layout
from dvr_agent.lab.layout import HostSpec
from dvr_agent.lab.procs import LabError, run
from dvr_agent.lab.services import dvrctl
from dvr_agent.state import Address, Route

# The lab's networks are IPv4. A VM with IPv6 on sends multicast reports on its own a
# random fraction of a second after its link comes up, and each of them teaches br-int
# where its MAC is: a test would see the VM's chatter repair what the agent left wrong.
IPV4_ONLY = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}


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
    mtu = server_json("network", "show", port["network_id"])["mtu"]
    tap = names.veth_host_name("qr-" + port["id"])
    vm = {"name": name, "host": host.name, "network": network, "port_id": port["id"],
          "ip": fixed["ip_address"], "mac": port["mac_address"], "tap": tap,
          "gateway": subnet.get("gateway_ip"), "mtu": mtu}
    try:
        fabric.NAMESPACES.create(ns)
        sysctls_set(ns, IPV4_ONLY)
        with Netlink(ns) as inside:
            inside.veth_add("eth0", tap, backend.netns_path(host))
            inside.link_set("eth0", mac=port["mac_address"], mtu=mtu, up=True)
            inside.link_set("lo", up=True)
            inside.addr_add(Address("eth0",
                                    f"{fixed['ip_address']}/{subnet['cidr'].split('/')[1]}"))
            if subnet.get("gateway_ip"):
                inside.route_replace(Route("0.0.0.0/0", gateway=subnet["gateway_ip"],
                                           device="eth0"))
        ethtool.tx_checksum_off(ns, "eth0")
        _plug(backend, host, vm)
    except Exception:
        delete(backend, host, vm)
        raise
    return vm


def _plug(backend, host: HostSpec, vm: dict) -> None:
    """The tap (already in the host) up, at the VM's MTU, into br-int as Nova plugs it."""
    tap, host_ns = vm["tap"], backend.netns_path(host)
    with Netlink(host_ns) as on_host:
        on_host.link_set(tap, mtu=vm["mtu"], up=True)
    ethtool.tx_checksum_off(host_ns, tap)
    run(backend.command(host, [
        "ovs-vsctl", "--timeout=20", "--may-exist", "add-port", "br-int", tap, "--",
        "set", "Interface", tap, f"external_ids:iface-id={vm['port_id']}",
        f"external_ids:attached-mac={vm['mac']}",
        "external_ids:iface-status=active", f"external_ids:vm-uuid={vm['name']}"]))


def migrate(backend, old: HostSpec, new: HostSpec, vm: dict) -> dict:
    """Move a running VM to ``new``; see the module docstring."""
    if old.name == new.name:
        raise LabError(f"VM {vm['name']} runs on {new.name} already")
    run(backend.command(old, ["ovs-vsctl", "--timeout=20", "--if-exists", "del-port",
                              "br-int", vm["tap"]]))
    with Netlink(backend.netns_path(old)) as source:
        source.link_move(vm["tap"], backend.netns_path(new))
    done = dvrctl(["port", "update", vm["port_id"], "--host", new.name], capture=True)
    if done.returncode != 0:
        raise LabError(f"dvrctl port update --host {new.name}: {done.stderr.strip()}")
    moved = {**vm, "host": new.name}
    _plug(backend, new, moved)
    return moved


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
