"""The management topic: dvrctl's requests, validated, run, answered Neutron-shaped."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dvr_agent.rpc.transport import oslo_messaging
from dvr_agent.server import management_protocol as api
from dvr_agent.server import payloads
from dvr_agent.server.db import models
from dvr_agent.server.domain import (
    agents,
    extra_routes,
    floatingips,
    lookup,
    networks,
    router_kinds,
    routers,
    vm_ports,
)
from dvr_agent.server.errors import BadRequest, ManagementError, NotFound
from dvr_agent.server.service import ControlPlane

LOG = logging.getLogger(__name__)


def validate(command: Any, args: Any) -> dict[str, Any]:
    """The args of a known command, or BadRequest naming what is unknown or missing."""
    spec = api.COMMANDS.get(command) if isinstance(command, str) else None
    if spec is None:
        raise BadRequest(f"unknown command {command!r}")
    if not isinstance(args, dict):
        raise BadRequest(f"{command}: args must be a dict")
    unknown = sorted(set(args) - set(spec.required) - set(spec.optional))
    if unknown:
        raise BadRequest(f"{command}: unknown argument(s) {', '.join(unknown)}")
    missing = [k for k in spec.required if args.get(k) in (None, "")]
    if missing:
        raise BadRequest(f"{command}: missing argument(s) {', '.join(missing)}")
    for key, value in args.items():
        if key in spec.lists:
            if value is not None and not (isinstance(value, list)
                                          and all(isinstance(v, str) for v in value)):
                raise BadRequest(f"{command}: argument {key} must be a list of strings")
        elif value is not None and not isinstance(value, str | bool):
            raise BadRequest(f"{command}: argument {key} must be a string")
    return args


def _flag(args: dict[str, Any], key: str) -> bool | None:
    """A yes/no argument: a bool, or ``true``/``false`` (``up``/``down`` for admin state)."""
    value = args.get(key)
    if value is None or isinstance(value, bool):
        return value
    words = {"true": True, "false": False, "up": True, "down": False, "yes": True,
             "no": False}
    if value.lower() not in words:
        raise BadRequest(f"{key.replace('_', '-')} must be true or false (or up/down, "
                         f"yes/no; got {value!r})")
    return words[value.lower()]


class ManagementEndpoint:
    target = oslo_messaging.Target(version=api.VERSION)

    def __init__(self, plane: ControlPlane):
        self._plane = plane
        s = plane.settings
        show = self._show
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "network.create": lambda a: self._change(
                lambda db: networks.create_network(db, s, a["name"],
                                                   external=bool(a.get("external")),
                                                   physnet=a.get("physnet"),
                                                   mtu=a.get("mtu")), "network"),
            "network.list": lambda a: self._list(models.Network, _network_show),
            "network.show": lambda a: show(models.Network, a["network"], _network_show),
            "network.delete": lambda a: self._change(
                lambda db: networks.delete_network(db, a["network"])),
            "subnet.create": lambda a: self._change(
                lambda db: networks.create_subnet(db, a["network"], a["cidr"],
                                                  gateway=a.get("gateway"),
                                                  name=a.get("name")), "subnet"),
            "subnet.list": lambda a: self._list(models.Subnet, _subnet_show),
            "subnet.show": lambda a: show(models.Subnet, a["subnet"], _subnet_show),
            "router.create": lambda a: self._change(
                lambda db: routers.create(db, s, a["name"],
                                          distributed=_flag(a, "distributed") is not False),
                "router"),
            "router.list": lambda a: self._list(models.Router, _router_show),
            "router.show": lambda a: show(models.Router, a["router"], _router_show),
            "router.delete": lambda a: self._change(lambda db: routers.delete(db, a["router"])),
            "router.add_interface": lambda a: self._change(
                lambda db: routers.add_interface(db, s, a["router"], a["subnet"])),
            "router.remove_interface": lambda a: self._change(
                lambda db: routers.remove_interface(db, a["router"], a["subnet"])),
            "router.set_gateway": lambda a: self._change(
                lambda db: routers.set_gateway(db, s, a["router"], a["network"]), "router"),
            "router.clear_gateway": lambda a: self._change(
                lambda db: routers.clear_gateway(db, a["router"]), "router"),
            "router.update": lambda a: self._change(
                lambda db: router_kinds.update(db, s, a["router"],
                                               admin_state_up=_flag(a, "admin_state_up"),
                                               distributed=_flag(a, "distributed")), "router"),
            "router.add_route": lambda a: self._change(
                lambda db: extra_routes.add(db, a["router"], a["destination"], a["nexthop"]),
                "router"),
            "router.remove_route": lambda a: self._change(
                lambda db: extra_routes.remove(db, a["router"], a["destination"],
                                               a["nexthop"]), "router"),
            "port.create": lambda a: self._change(
                lambda db: vm_ports.create(db, s, a["network"], a.get("host"), ip=a.get("ip"),
                                           mac=a.get("mac"), name=a.get("name")), "port"),
            "port.update": lambda a: self._change(
                lambda db: vm_ports.update(db, s, a["port"], host=a.get("host"),
                                           allowed_addresses=a.get("allowed_addresses")),
                "port"),
            "port.list": lambda a: self._list(models.Port, _port_show),
            "port.show": lambda a: show(models.Port, a["port"], _port_show),
            "port.delete": lambda a: self._change(lambda db: vm_ports.delete(db, a["port"])),
            "floatingip.create": lambda a: self._change(
                lambda db: floatingips.create(db, s, a["network"], a.get("port")),
                "floatingip"),
            "floatingip.list": lambda a: self._list(models.FloatingIP, payloads.floatingip_dict),
            "floatingip.show": lambda a: self._plane.read(
                lambda db: payloads.floatingip_dict(
                    db, lookup.resolve_floatingip(db, a["floatingip"]))),
            "floatingip.associate": lambda a: self._change(
                lambda db: floatingips.associate(db, s, a["floatingip"], a["port"]),
                "floatingip"),
            "floatingip.disassociate": lambda a: self._change(
                lambda db: floatingips.disassociate(db, a["floatingip"]), "floatingip"),
            "floatingip.delete": lambda a: self._change(
                lambda db: floatingips.delete(db, a["floatingip"])),
            "host.list": lambda a: self._plane.read(lambda db: _hosts(db, s)),
            "host.show": lambda a: self._plane.read(lambda db: _host(db, s, a["host"])),
            "agent.list": lambda a: self._plane.read(lambda db: _agents(db, s)),
        }
        assert set(self._handlers) == set(api.COMMANDS), "management table and handlers differ"

    @oslo_messaging.expected_exceptions(ManagementError)
    def execute(self, context: dict, command: str, args: dict[str, Any] | None = None) -> Any:
        """Run one management command; a ManagementError is the answer, not a server fault."""
        args = validate(command, args if args is not None else {})
        LOG.info("management: %s %s", command, args)
        return self._handlers[command](args)

    # ------------------------------------------------------------ helpers

    def _change(self, work: Callable[[Session], Any], kind: str | None = None) -> Any:
        return self._plane.change(work, _PRESENTERS.get(kind))

    def _show(self, model: type, ref: str, present: Presenter) -> dict[str, Any]:
        return self._plane.read(lambda db: present(db, lookup.resolve(db, model, ref)))

    def _list(self, model: type, present: Presenter) -> list[dict[str, Any]]:
        return self._plane.read(lambda db: [
            present(db, r) for r in db.scalars(select(model).order_by(model.created_at,
                                                                      model.id))])


def _network_show(db: Session, network: models.Network) -> dict[str, Any]:
    return payloads.network_dict(network)


def _subnet_show(db: Session, subnet: models.Subnet) -> dict[str, Any]:
    return payloads.subnet_dict(subnet)


def _router_show(db: Session, router: models.Router) -> dict[str, Any]:
    return payloads.router_show(db, router)


def _port_show(db: Session, port: models.Port) -> dict[str, Any]:
    return payloads.port_dict(port, with_subnets=False)


Presenter = Callable[[Session, Any], dict[str, Any]]
_PRESENTERS: dict[str | None, Presenter] = {
    "network": _network_show, "subnet": _subnet_show, "router": _router_show,
    "port": _port_show, "floatingip": payloads.floatingip_dict}


def _host_rows(db: Session, settings: Any) -> dict[str, dict[str, Any]]:
    now = settings.now()
    rows: dict[str, dict[str, Any]] = {}
    for mac in db.scalars(select(models.DvrHostMac)):
        rows[mac.host] = {"host": mac.host, "mac_address": mac.mac_address, "agents": []}
    for agent in db.scalars(select(models.Agent).order_by(models.Agent.agent_type)):
        row = rows.setdefault(agent.host, {"host": agent.host, "mac_address": None,
                                           "agents": []})
        row["agents"].append({"agent_type": agent.agent_type,
                              "agent_mode": agents.configurations(agent).get("agent_mode"),
                              "alive": agents.is_alive(agent, now, settings.agent_down_time)})
    for row in rows.values():
        row["agent_modes"] = sorted({a["agent_mode"] for a in row["agents"] if a["agent_mode"]})
        row["alive"] = any(a["alive"] for a in row["agents"])
    return rows


def _hosts(db: Session, settings: Any) -> list[dict[str, Any]]:
    return [row for _, row in sorted(_host_rows(db, settings).items())]


def _host(db: Session, settings: Any, host: str) -> dict[str, Any]:
    row = _host_rows(db, settings).get(host)
    if row is None:
        raise NotFound(f"no host {host!r} has an agent or a DVR MAC")
    return row


def _agents(db: Session, settings: Any) -> list[dict[str, Any]]:
    now = settings.now()
    return [{"id": a.id, "agent_type": a.agent_type, "binary": a.binary, "host": a.host,
             "topic": a.topic, "alive": agents.is_alive(a, now, settings.agent_down_time),
             "configurations": agents.configurations(a),
             "heartbeat_timestamp": payloads.stamp(a.heartbeat_timestamp),
             "started_at": payloads.stamp(a.started_at)}
            for a in db.scalars(select(models.Agent).order_by(models.Agent.host,
                                                              models.Agent.agent_type))]
