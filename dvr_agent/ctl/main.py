"""``dvrctl``: the operator's CLI for dvr-server. Names or ids wherever a resource is named.

    dvrctl [--config-file F] [--json] RESOURCE ACTION [ARGS]

Every command is one management RPC to dvr-server; the server validates and answers. An
error is one line on stderr and exit status 1 (2 for a malformed command line).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from dvr_agent.ctl import output
from dvr_agent.ctl.client import ManagementClient, ServerUnreachable
from dvr_agent.rpc import transport as rpc_transport
from dvr_agent.server.errors import ManagementError

DEFAULT_CONFIG = "/etc/dvr-agent/dvr-server.conf"
Args = Callable[[argparse.Namespace], dict[str, Any]]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, not argparse's usage block: the brief's "one clear line"."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _command(sub: argparse._SubParsersAction, name: str, rpc: str, args: Args,
             help_text: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(rpc=rpc, rpc_args=args)
    return parser


def _none(_: argparse.Namespace) -> dict[str, Any]:
    return {}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dvrctl", description="Operate dvr-server's topology.")
    parser.add_argument("--config-file", action="append", default=[],
                        help=f"dvr-server's config file (transport_url); default {DEFAULT_CONFIG}")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument("--timeout", type=int, default=60, help="seconds to wait for the server")
    resources = parser.add_subparsers(dest="resource", required=True, parser_class=_Parser)

    def resource(name: str, with_show: bool = True) -> argparse._SubParsersAction:
        actions = resources.add_parser(name, help=f"{name}s").add_subparsers(
            dest="action", required=True, parser_class=_Parser)
        _command(actions, "list", f"{name}.list", _none, f"list {name}s")
        if with_show:
            _command(actions, "show", f"{name}.show", lambda a: {name: a.ref},
                     f"show one {name}").add_argument("ref", metavar=name.upper())
        return actions

    net = resource("network")
    p = _command(net, "create", "network.create", lambda a: {
        "name": a.name, "external": a.external or None, "physnet": a.physnet, "mtu": a.mtu},
        "create a tenant VXLAN network, or an external flat one")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--external", action="store_true", help="an external (flat) network")
    p.add_argument("--physnet", help="physical network of an external network")
    p.add_argument("--mtu", help="a smaller MTU than the largest the network can carry")
    _command(net, "delete", "network.delete", lambda a: {"network": a.ref},
             "delete a network and its subnets").add_argument("ref", metavar="NETWORK")

    sub = resource("subnet")
    p = _command(sub, "create", "subnet.create", lambda a: {
        "network": a.network, "cidr": a.cidr, "gateway": a.gateway, "name": a.name},
        "create a subnet")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("cidr", metavar="CIDR")
    p.add_argument("--gateway", metavar="IP")
    p.add_argument("--name", metavar="N")

    rtr = resource("router")
    p = _command(rtr, "create", "router.create",
                 lambda a: {"name": a.name, "distributed": a.distributed},
                 "create a router: distributed (DVR), or legacy with --distributed false")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--distributed", metavar="true|false",
                   help="false: a legacy (centralized) router on the network node")
    p = _command(rtr, "set", "router.update", lambda a: {
        "router": a.router, "admin_state_up": a.admin_state, "distributed": a.distributed},
        "change a router's admin state, or migrate it legacy <-> distributed "
        "(admin down, then --distributed, then admin up)")
    p.add_argument("router", metavar="ROUTER")
    p.add_argument("--admin-state", metavar="up|down")
    p.add_argument("--distributed", metavar="true|false")
    for verb, rpc in (("add-route", "router.add_route"), ("remove-route",
                                                          "router.remove_route")):
        p = _command(rtr, verb, rpc, lambda a: {
            "router": a.router, "destination": a.destination, "nexthop": a.nexthop},
            f"{verb.split('-')[0]} an extra route: DESTINATION (a CIDR) via NEXTHOP")
        p.add_argument("router", metavar="ROUTER")
        p.add_argument("destination", metavar="CIDR")
        p.add_argument("nexthop", metavar="NEXTHOP")
    for verb, rpc in (("add-interface", "router.add_interface"),
                      ("remove-interface", "router.remove_interface")):
        p = _command(rtr, verb, rpc, lambda a: {"router": a.router, "subnet": a.subnet},
                     f"{verb.replace('-', ' ')} on a subnet")
        p.add_argument("router", metavar="ROUTER")
        p.add_argument("subnet", metavar="SUBNET")
    p = _command(rtr, "set-gateway", "router.set_gateway",
                 lambda a: {"router": a.router, "network": a.network},
                 "give the router a gateway on an external network")
    p.add_argument("router", metavar="ROUTER")
    p.add_argument("network", metavar="EXTERNAL_NETWORK")
    _command(rtr, "clear-gateway", "router.clear_gateway", lambda a: {"router": a.router},
             "remove the router's gateway").add_argument("router", metavar="ROUTER")
    _command(rtr, "delete", "router.delete", lambda a: {"router": a.router},
             "delete a router without interfaces").add_argument("router", metavar="ROUTER")

    prt = resource("port")
    p = _command(prt, "create", "port.create", lambda a: {
        "network": a.network, "host": a.host, "ip": a.ip, "mac": a.mac, "name": a.name},
        "create a VM port (compute:nova) bound to a host, or unbound (a VIP) without --host")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("--host")
    p.add_argument("--ip")
    p.add_argument("--mac")
    p.add_argument("--name")
    _command(prt, "delete", "port.delete", lambda a: {"port": a.port},
             "delete a VM port").add_argument("port", metavar="PORT")
    p = _command(prt, "update", "port.update", lambda a: {
        "port": a.port, "host": a.host,
        "allowed_addresses": [] if a.no_allowed_address else a.allowed_address},
        "move a VM port to another host (a live migration), set its allowed address pairs")
    p.add_argument("port", metavar="PORT")
    p.add_argument("--host", help="the host the VM now runs on")
    pairs = p.add_mutually_exclusive_group()
    pairs.add_argument("--allowed-address", action="append", metavar="IP[,MAC]",
                       help="an address (a VIP) the port may use, with its MAC if not the "
                            "port's; repeat for several; replaces the port's list")
    pairs.add_argument("--no-allowed-address", action="store_true",
                       help="remove all allowed address pairs")

    fip = resource("floatingip")
    p = _command(fip, "create", "floatingip.create",
                 lambda a: {"network": a.network, "port": a.port}, "create a floating IP")
    p.add_argument("network", metavar="EXTERNAL_NETWORK")
    p.add_argument("--port", metavar="PORT")
    p = _command(fip, "associate", "floatingip.associate",
                 lambda a: {"floatingip": a.fip, "port": a.port}, "map a floating IP to a port")
    p.add_argument("fip", metavar="FIP")
    p.add_argument("port", metavar="PORT")
    for verb in ("disassociate", "delete"):
        _command(fip, verb, f"floatingip.{verb}", lambda a: {"floatingip": a.fip},
                 f"{verb} a floating IP").add_argument("fip", metavar="FIP")

    resource("host")
    resource("agent", with_show=False)
    return parser


def _load_conf(files: list[str]) -> Any:
    from oslo_config import cfg

    from dvr_agent.server import config

    config.register(cfg.CONF)
    if not files and os.path.exists(DEFAULT_CONFIG):
        files = [DEFAULT_CONFIG]
    for path in files:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"config file {path} does not exist")
    cfg.CONF([arg for path in files for arg in ("--config-file", path)],
             project="dvr-agent", prog="dvrctl", default_config_files=[])
    return cfg.CONF


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        conf = _load_conf(args.config_file)
        client = ManagementClient.from_conf(conf, timeout=args.timeout)
    except (OSError, ValueError, rpc_transport.oslo_messaging.MessagingException) as exc:
        print(f"dvrctl: error: {exc}", file=sys.stderr)
        return 1
    try:
        result = client.execute(args.rpc, **args.rpc_args(args))
    except (ManagementError, ServerUnreachable) as exc:
        print(f"dvrctl: error: {exc}", file=sys.stderr)
        return 1
    except rpc_transport.oslo_messaging.RemoteError as exc:
        print(f"dvrctl: error: dvr-server failed: {exc.exc_type}: {exc.value}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(output.render(args.resource, result, args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
