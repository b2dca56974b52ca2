"""The server's notifications, as Neutron's L3 and OVS agents receive them.

Each endpoint method parses its payload into models first; a malformed payload is
logged with the field that is wrong and changes nothing, and the agent keeps serving.
Notifications that only say "R changed" turn into a fetch (the facts come from
``sync_routers``); those that carry facts (ARP entries, DVR MACs, tunnels, l2pop FDB)
change the facts directly, so an ARP entry reaches the kernel without a round trip.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

import oslo_messaging

from dvr_agent import models
from dvr_agent.agent.core import AgentCore
from dvr_agent.agent.fetcher import Fetcher
from dvr_agent.agent.metrics import Metrics
from dvr_agent.agent.vifs import VifTracker
from dvr_agent.facts import Facts
from dvr_agent.models import PayloadError
from dvr_agent.models import fields as f
from dvr_agent.reconcile.actual import Aspect
from dvr_agent.rpc import protocol

LOG = logging.getLogger(__name__)


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """Reject a bad payload with a logged reason; never let an exception reach oslo."""
    @functools.wraps(method)
    def endpoint(self, context, **kwargs):  # oslo's endpoint signature
        try:
            return method(self, **kwargs)
        except PayloadError as exc:
            LOG.warning("%s rejected: %s", method.__name__, exc)
        except Exception:
            LOG.exception("%s failed; the agent keeps serving", method.__name__)
        self._metrics.error("notification")
        return None
    return endpoint


class L3AgentNotifications:
    """Topic ``l3_agent`` (``l3_agent.<host>`` and the fanout), version 1.4."""

    target = oslo_messaging.Target(version=protocol.L3_AGENT_ENDPOINT_VERSION)

    def __init__(self, core: AgentCore, fetcher: Fetcher, metrics: Metrics) -> None:
        self._core = core
        self._fetcher = fetcher
        self._metrics = metrics

    def _change(self, event: str, mutate: Callable[[Facts], Iterable[str]],
                aspect: Aspect = Aspect.ALL) -> None:
        """Change the facts for ``event``, timed until its keys are applied."""
        trace = self._metrics.trace(event)
        self._core.change(mutate, aspect=aspect, traces=(trace,))
        trace.release()

    def _fetch(self, event: str, router_ids) -> None:
        """Fetch routers for ``event``, timed until what the answer changed is applied."""
        trace = self._metrics.trace(event)
        self._fetcher.request_routers(router_ids, trace)
        trace.release()

    @_guarded
    def routers_updated(self, **kwargs):
        self._fetch("routers_updated", models.router_ids(kwargs))

    @_guarded
    def router_added_to_agent(self, **kwargs):
        self._fetch("router_added_to_agent", f.field(kwargs, "payload", f.items(f.uuid)))

    @_guarded
    def router_removed_from_agent(self, **kwargs):
        router_id = models.removed_router_id(kwargs)
        self._change("router_removed_from_agent", lambda facts: facts.remove_router(router_id))

    @_guarded
    def router_deleted(self, **kwargs):
        router_id = models.removed_router_id(kwargs)
        self._change("router_deleted", lambda facts: facts.remove_router(router_id))

    @_guarded
    def add_arp_entry(self, **kwargs):
        entry = models.ArpEntry.from_kwargs(kwargs)
        self._change("add_arp_entry", lambda facts: facts.add_arp_entry(entry), Aspect.NEIGH)

    @_guarded
    def del_arp_entry(self, **kwargs):
        entry = models.ArpEntry.from_kwargs(kwargs)
        self._change("del_arp_entry", lambda facts: facts.del_arp_entry(entry), Aspect.NEIGH)

    @_guarded
    def fipnamespace_delete_on_ext_net(self, **kwargs):
        """The server dropped our gateway ports on that network: forget ours."""
        network_id = models.fip_namespace_network(kwargs)
        self._core.change(lambda facts: facts.set_fip_gateway_port(network_id, None))

    @_guarded
    def agent_updated(self, **kwargs):
        f.field(kwargs, "payload", f.mapping)
        LOG.info("agent_updated: full sync")
        self._fetcher.request_full_sync()


class OvsAgentNotifications:
    """The ``q-agent-notifier-*`` fanouts an OVS agent with DVR and l2population consumes."""

    target = oslo_messaging.Target(version="1.9")

    def __init__(self, core: AgentCore, fetcher: Fetcher, vifs: VifTracker, host: str,
                 metrics: Metrics) -> None:
        self._core = core
        self._fetcher = fetcher
        self._vifs = vifs
        self._host = host
        self._metrics = metrics

    @_guarded
    def dvr_mac_address_update(self, **kwargs):
        macs = models.dvr_macs(kwargs)
        self._core.change(lambda facts: facts.set_dvr_macs(macs))

    @_guarded
    def tunnel_update(self, **kwargs):
        peer = models.TunnelPeer.from_update(kwargs)
        self._core.change(lambda facts: facts.add_tunnel_peer(peer))

    @_guarded
    def tunnel_delete(self, **kwargs):
        peer = models.TunnelPeer.from_update(kwargs)
        self._core.change(lambda facts: facts.remove_tunnel_peer(peer))

    @_guarded
    def add_fdb_entries(self, **kwargs):
        entries = models.fdb_entries(kwargs)
        self._core.change(lambda facts: facts.add_fdb(entries), aspect=Aspect.FLOWS)

    @_guarded
    def remove_fdb_entries(self, **kwargs):
        entries = models.fdb_entries(kwargs)
        self._core.change(lambda facts: facts.remove_fdb(entries), aspect=Aspect.FLOWS)

    @_guarded
    def update_fdb_entries(self, **kwargs):
        """IP changes of ports (``chg_ip``): rare; a full sync re-learns the tunnels."""
        f.field(kwargs, "fdb_entries", f.mapping)
        self._fetcher.request_full_sync()

    @_guarded
    def port_update(self, **kwargs):
        """A port of ours changed (MAC, IPs, admin state): fetch its details again."""
        port = f.field(kwargs, "port", f.mapping)
        port_id = f.field(port, "id", f.uuid)
        if port.get("binding:host_id") == self._host:
            self._vifs.refresh(port_id)

    @_guarded
    def port_delete(self, **kwargs):
        f.field(kwargs, "port_id", f.uuid)  # the tap leaving br-int is what removes a VIF

    @_guarded
    def network_update(self, **kwargs):
        """An MTU or segment change: routers on that network are fetched again."""
        network = f.field(kwargs, "network", f.mapping)
        network_id = f.field(network, "id", f.uuid)
        routers = self._core.read(lambda facts: sorted(
            r.id for r in facts.routers.values() if network_id in r.network_ids()))
        if routers:
            self._fetcher.request_routers(routers)

    @_guarded
    def network_delete(self, **kwargs):
        f.field(kwargs, "network_id", f.uuid)


# Each notifier topic and the endpoint class that consumes it.
OVS_TOPICS = (
    protocol.TOPIC_DVR_UPDATE,
    protocol.TOPIC_TUNNEL_UPDATE,
    protocol.TOPIC_TUNNEL_DELETE,
    protocol.TOPIC_L2POP_UPDATE,
    protocol.TOPIC_PORT_UPDATE,
    protocol.TOPIC_PORT_DELETE,
    protocol.TOPIC_NETWORK_UPDATE,
    protocol.TOPIC_NETWORK_DELETE,
)


def rpc_servers(transport: oslo_messaging.Transport, host: str, l3: L3AgentNotifications,
                ovs: OvsAgentNotifications) -> list[oslo_messaging.MessageHandlingServer]:
    """One RPC server per topic, each with server=host (so also ``<topic>.<host>``)."""
    servers = [oslo_messaging.get_rpc_server(
        transport, oslo_messaging.Target(topic=protocol.TOPIC_L3_AGENT, server=host), [l3],
        executor="threading")]
    for topic in OVS_TOPICS:
        servers.append(oslo_messaging.get_rpc_server(
            transport, oslo_messaging.Target(topic=topic, server=host), [ovs],
            executor="threading"))
    return servers
