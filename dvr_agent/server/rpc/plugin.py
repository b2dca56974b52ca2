"""``q-plugin``: the OVS agent's calls (neutron's RpcCallbacks 1.9 and DVRServerRpcCallback 1.1)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dvr_agent.rpc import protocol
from dvr_agent.rpc.transport import oslo_messaging
from dvr_agent.server import payloads
from dvr_agent.server.db import models
from dvr_agent.server.domain import agents, devices, macs
from dvr_agent.server.domain import notifications as notify
from dvr_agent.server.domain.notifications import Outcome
from dvr_agent.server.errors import BadRequest
from dvr_agent.server.rpc.l3 import _require
from dvr_agent.server.service import ControlPlane

LOG = logging.getLogger(__name__)


class PluginEndpoint:
    """Tunnels and device status: ``tunnel_sync``, device details, ``update_device_*``."""

    target = oslo_messaging.Target(version=protocol.PLUGIN_SERVER_VERSION)

    def __init__(self, plane: ControlPlane):
        self._plane = plane

    def tunnel_sync(self, context: dict, **kwargs: Any) -> dict[str, Any]:
        """Record the endpoint, return all of them, tell every agent about a new one."""
        tunnel_ip = _require(kwargs.get("tunnel_ip"), "tunnel_ip")
        tunnel_type = _require(kwargs.get("tunnel_type"), "tunnel_type")
        host = kwargs.get("host")

        def work(session: Session) -> Outcome:
            endpoints, changed = agents.tunnel_sync(session, tunnel_ip, tunnel_type, host)
            notes = [notify.tunnel_update(tunnel_ip, tunnel_type)] if changed else []
            return Outcome({"tunnels": endpoints}, notes)

        return self._plane.change(work)

    def get_device_details(self, context: dict, device: str, agent_id: str = "",
                           host: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return self._plane.read(lambda s: devices.device_details(s, device, host))

    def get_devices_details_list(self, context: dict, devices: list[str], agent_id: str = "",
                                 host: str | None = None, **kwargs: Any) -> list[dict]:
        return self.get_devices_details_list_and_failed_devices(
            context, devices, agent_id, host)["devices"]

    def get_devices_details_list_and_failed_devices(
            self, context: dict, devices: list[str], agent_id: str = "",
            host: str | None = None, **kwargs: Any) -> dict[str, list]:
        if not isinstance(devices, list):
            raise BadRequest("devices must be a list of port ids")
        details = self._plane.read(lambda s: _details(s, devices, host))
        return {"devices": details, "failed_devices": []}

    def update_device_list(self, context: dict, devices_up: list[str] | None = None,
                           devices_down: list[str] | None = None, agent_id: str = "",
                           host: str | None = None, **kwargs: Any) -> dict[str, list]:
        host = _require(host, "host")
        up, down = list(devices_up or []), list(devices_down or [])

        def work(session: Session) -> Outcome:
            notes: list[notify.Notification] = []
            gone: list[dict[str, Any]] = []
            for device in up:
                notes += devices.set_device_status(session, device, host, True)[1]
            for device in down:
                known, more = devices.set_device_status(session, device, host, False)
                notes += more
                gone.append({"device": device, "exists": known})
            return Outcome({"devices_up": up, "failed_devices_up": [],
                            "devices_down": gone, "failed_devices_down": []}, notes)

        return self._plane.change(work)

    def update_device_up(self, context: dict, device: str, agent_id: str = "",
                         host: str | None = None, **kwargs: Any) -> None:
        self.update_device_list(context, devices_up=[device], agent_id=agent_id, host=host)

    def update_device_down(self, context: dict, device: str, agent_id: str = "",
                           host: str | None = None, **kwargs: Any) -> dict[str, Any]:
        result = self.update_device_list(context, devices_down=[device], agent_id=agent_id,
                                         host=host)
        return result["devices_down"][0]


def _details(session: Session, listed: list[Any], host: str | None) -> list[dict[str, Any]]:
    """(the methods' ``devices`` argument hides the module of the same name)"""
    return devices.devices_details(session, listed, host)


class DvrEndpoint:
    """DVR host MACs and the subnets/ports the OVS agent's DVR flows need."""

    target = oslo_messaging.Target(version=protocol.DVR_SERVER_VERSION)

    def __init__(self, plane: ControlPlane):
        self._plane = plane

    def get_dvr_mac_address_by_host(self, context: dict, host: str,
                                    **kwargs: Any) -> dict[str, str]:
        """The host's DVR MAC, allocated on first request; a new one is fanned out to all."""
        host = _require(host, "host")
        settings = self._plane.settings

        def work(session: Session) -> Outcome:
            mac, created = macs.dvr_mac_for_host(session, host, settings.dvr_base_mac,
                                                 retries=settings.dvr_mac_retries)
            notes = [notify.dvr_mac_address_update(macs.dvr_mac_list(session))] if created \
                else []
            return Outcome({"host": host, "mac_address": macs.neutron_mac(mac)}, notes)

        return self._plane.change(work)

    def get_dvr_mac_address_list(self, context: dict, **kwargs: Any) -> list[dict[str, str]]:
        return self._plane.read(macs.dvr_mac_list)

    def get_ports_on_host_by_subnet(self, context: dict, host: str, subnet: str,
                                    **kwargs: Any) -> list[dict[str, Any]]:
        """VM ports bound to ``host`` with an address on ``subnet`` (DVR-serviced ports)."""
        _require(host, "host")
        _require(subnet, "subnet")

        def work(session: Session) -> list[dict[str, Any]]:
            found = session.scalars(
                select(models.Port).join(models.IPAllocation,
                                         models.IPAllocation.port_id == models.Port.id)
                .where(models.IPAllocation.subnet_id == subnet,
                       models.Port.binding_host == host,
                       models.Port.device_owner.startswith(
                           protocol.DEVICE_OWNER_COMPUTE_PREFIX))
                .order_by(models.Port.id).distinct())
            return [payloads.port_brief(p) for p in found]

        return self._plane.read(work)

    def get_subnet_for_dvr(self, context: dict, subnet: str,
                           fixed_ips: list[dict[str, str]] | None = None,
                           **kwargs: Any) -> dict[str, Any]:
        """The subnet plus ``gateway_mac``: the MAC of the port holding the router's address."""
        _require(subnet, "subnet")

        def work(session: Session) -> dict[str, Any]:
            row = session.get(models.Subnet, subnet)
            if row is None:
                return {}
            address = row.gateway_ip
            if fixed_ips:
                address = fixed_ips[0].get("ip_address", address)
            holder = session.get(models.IPAllocation, (subnet, address)) if address else None
            if holder is None:
                return {}
            return {**payloads.subnet_dict(row), "gateway_mac": holder.port.mac_address}

        return self._plane.read(work)
