"""The management RPC between dvrctl and dvr-server: its topic, version and commands.

One method, ``execute(command, args)``, so validation lives in one table: each command
names its required and optional arguments, and anything else is refused with a clear
error before any work starts.
"""

from __future__ import annotations

from dataclasses import dataclass

TOPIC = "dvr-server-management"
VERSION = "1.0"


@dataclass(frozen=True)
class CommandSpec:
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()  # arguments that are lists of strings; the rest are strings


COMMANDS: dict[str, CommandSpec] = {
    "network.create": CommandSpec(("name",), ("external", "physnet", "mtu")),
    "network.list": CommandSpec(),
    "network.show": CommandSpec(("network",)),
    "network.delete": CommandSpec(("network",)),
    "subnet.create": CommandSpec(("network", "cidr"), ("gateway", "name")),
    "subnet.list": CommandSpec(),
    "subnet.show": CommandSpec(("subnet",)),
    "router.create": CommandSpec(("name",), ("distributed",)),
    "router.list": CommandSpec(),
    "router.show": CommandSpec(("router",)),
    "router.delete": CommandSpec(("router",)),
    "router.add_interface": CommandSpec(("router", "subnet")),
    "router.remove_interface": CommandSpec(("router", "subnet")),
    "router.set_gateway": CommandSpec(("router", "network")),
    "router.clear_gateway": CommandSpec(("router",)),
    "router.update": CommandSpec(("router",), ("admin_state_up", "distributed")),
    "router.add_route": CommandSpec(("router", "destination", "nexthop")),
    "router.remove_route": CommandSpec(("router", "destination", "nexthop")),
    "port.create": CommandSpec(("network",), ("host", "ip", "mac", "name")),
    "port.update": CommandSpec(("port",), ("host", "allowed_addresses"),
                               lists=("allowed_addresses",)),
    "port.list": CommandSpec(),
    "port.show": CommandSpec(("port",)),
    "port.delete": CommandSpec(("port",)),
    "floatingip.create": CommandSpec(("network",), ("port",)),
    "floatingip.list": CommandSpec(),
    "floatingip.show": CommandSpec(("floatingip",)),
    "floatingip.associate": CommandSpec(("floatingip", "port")),
    "floatingip.disassociate": CommandSpec(("floatingip",)),
    "floatingip.delete": CommandSpec(("floatingip",)),
    "host.list": CommandSpec(),
    "host.show": CommandSpec(("host",)),
    "agent.list": CommandSpec(),
}
