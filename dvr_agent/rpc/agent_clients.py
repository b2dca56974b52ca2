"""The calls a DVR agent makes to its server, exactly as Neutron's L3 and OVS agents make them.

Same topics, method names, kwargs and versions (dvr_agent.rpc.protocol), so the server
may be dvr-server or an unmodified neutron-server. Replies are returned as they come;
the caller parses them into models (dvr_agent.models) before anything else sees them.
"""

from __future__ import annotations

import datetime
from typing import Any

from dvr_agent.rpc import protocol
from dvr_agent.rpc.transport import admin_context, oslo_messaging


class BulkUnsupported(Exception):
    """The server has no call of ours (neutron-server, or an older dvr-server)."""


class ServerApi:
    def __init__(self, transport: oslo_messaging.Transport, host: str, timeout: int) -> None:
        self.host = host
        self.agent_id = f"ovs-agent-{host}"  # what Neutron's OVS agent calls itself

        def client(topic: str, version: str, namespace: str | None = None
                   ) -> oslo_messaging.RPCClient:
            target = oslo_messaging.Target(topic=topic, version=version, namespace=namespace)
            return oslo_messaging.get_rpc_client(transport, target, timeout=timeout)

        self._l3 = client(protocol.TOPIC_L3_PLUGIN, protocol.L3_PLUGIN_BASE_VERSION)
        self._plugin = client(protocol.TOPIC_PLUGIN, protocol.PLUGIN_BASE_VERSION)
        self._dvr = client(protocol.TOPIC_PLUGIN, protocol.DVR_BASE_VERSION)
        self._reports = client(protocol.TOPIC_REPORTS, protocol.REPORTS_VERSION)
        self._bulk = client(protocol.TOPIC_L3_PLUGIN, protocol.BULK_VERSION,
                            protocol.BULK_NAMESPACE)

    def _l3_call(self, method: str, timeout: float | None = None, **kwargs: Any) -> Any:
        cctxt = self._l3.prepare(version=protocol.L3_PLUGIN_METHOD_VERSIONS[method],
                                 **({"timeout": timeout} if timeout else {}))
        return cctxt.call(admin_context(), method, **kwargs)

    def _plugin_call(self, method: str, **kwargs: Any) -> Any:
        cctxt = self._plugin.prepare(version=protocol.PLUGIN_METHOD_VERSIONS[method])
        return cctxt.call(admin_context(), method, **kwargs)

    # ---------------------------------------------------------------- L3 (q-l3-plugin)

    def get_router_ids(self, timeout: float | None = None) -> Any:
        return self._l3_call("get_router_ids", timeout=timeout, host=self.host)

    def sync_routers(self, router_ids: list[str] | None, timeout: float | None = None) -> Any:
        return self._l3_call("sync_routers", timeout=timeout, host=self.host,
                             router_ids=router_ids)

    def get_agent_gateway_port(self, external_network_id: str) -> Any:
        return self._l3_call("get_agent_gateway_port", fip_net=external_network_id,
                             host=self.host)

    def get_ports_by_subnet(self, subnet_id: str) -> Any:
        return self._l3_call("get_ports_by_subnet", host=self.host, subnet_id=subnet_id)

    def get_ports_by_subnets(self, subnet_ids: list[str]) -> Any:
        """Not Neutron's (protocol.BULK_NAMESPACE): raises ``BulkUnsupported`` where the
        server does not have it."""
        try:
            return self._bulk.prepare().call(admin_context(), "get_ports_by_subnets",
                                             host=self.host, subnet_ids=subnet_ids)
        except (oslo_messaging.UnsupportedVersion, oslo_messaging.NoSuchMethod) as exc:
            raise BulkUnsupported(str(exc)) from exc
        except oslo_messaging.RemoteError as exc:
            if exc.exc_type in ("UnsupportedVersion", "NoSuchMethod"):
                raise BulkUnsupported(exc.value or exc.exc_type) from exc
            raise

    def update_floatingip_statuses(self, router_id: str, statuses: dict[str, str]) -> Any:
        return self._l3_call("update_floatingip_statuses", router_id=router_id,
                             fip_statuses=statuses)

    # ---------------------------------------------------------------- DVR (q-plugin)

    def get_dvr_mac_address_by_host(self) -> Any:
        return self._dvr.prepare().call(admin_context(), "get_dvr_mac_address_by_host",
                                        host=self.host)

    def get_dvr_mac_address_list(self) -> Any:
        return self._dvr.prepare().call(admin_context(), "get_dvr_mac_address_list")

    # ---------------------------------------------------------------- OVS agent (q-plugin)

    def tunnel_sync(self, tunnel_ip: str, tunnel_type: str = "vxlan") -> Any:
        return self._plugin_call("tunnel_sync", tunnel_ip=tunnel_ip, tunnel_type=tunnel_type,
                                 host=self.host)

    def get_devices_details(self, devices: list[str]) -> Any:
        return self._plugin_call("get_devices_details_list_and_failed_devices",
                                 devices=devices, agent_id=self.agent_id, host=self.host)

    def update_device_list(self, devices_up: list[str], devices_down: list[str]) -> Any:
        return self._plugin_call("update_device_list", devices_up=devices_up,
                                 devices_down=devices_down, agent_id=self.agent_id,
                                 host=self.host)

    # ---------------------------------------------------------------- q-reports-plugin

    def report_state(self, agent_state: dict[str, Any], timeout: float | None = None) -> Any:
        """Neutron wraps the state twice and stamps the agent's UTC time; like Neutron, the
        heartbeat waits no longer than the report interval."""
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        cctxt = self._reports.prepare(**({"timeout": timeout} if timeout else {}))
        return cctxt.call(admin_context(), "report_state",
                          agent_state={"agent_state": agent_state}, time=now)
