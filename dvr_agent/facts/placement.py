"""Which parts of a router this host runs, from the router and the agent's own settings.

Pure functions of (config, router), used by the facts' indexes and by the compiler, so
both agree on every decision:

- a distributed router runs everywhere the server sends it; its gateway (snat-R, qg-)
  only on its SNAT host (``gw_port_host``), and only on a ``dvr_snat`` agent;
- a legacy (centralized) router runs whole on the one ``dvr_snat`` host the server bound
  it to: qr- and qg- in qrouter-R, no DVR flows, no fip namespace;
- a floating IP is *distributed* (routed by its VM's host through fip-E) unless the
  server marked it ``dvr_snat_bound`` (its port is unbound, or its host runs
  ``dvr_no_external``, which never has a fip namespace); then the SNAT host serves it
  on qg- (digest §2.5). A legacy router's floating IPs all live on its qg-.
"""

from __future__ import annotations

from dvr_agent.facts.config import AgentConfig
from dvr_agent.models import FloatingIp, Router


def hostable(config: AgentConfig, router: Router) -> bool:
    """Administratively up, and of a kind this agent runs (legacy: dvr_snat agents only)."""
    return router.admin_state_up and (router.distributed or config.snat_capable)


def is_snat_host(config: AgentConfig, router: Router) -> bool:
    """This host holds the distributed router's snat namespace."""
    return (router.distributed and config.snat_capable and router.gw_port is not None
            and router.gw_port_host == config.host)


def hosts_gateway(config: AgentConfig, router: Router) -> bool:
    """This host plugs the router's qg-: its snat namespace, or a legacy router's qrouter."""
    if router.distributed:
        return is_snat_host(config, router)
    return router.gw_port is not None


def _on_gateway_network(router: Router, fips: list[FloatingIp]) -> tuple[FloatingIp, ...]:
    ext = router.external_network_id
    return tuple(sorted((f for f in fips if f.floating_network_id == ext),
                        key=lambda f: (int(f.floating_ip), f.id)))


def local_fips(config: AgentConfig, router: Router) -> tuple[FloatingIp, ...]:
    """Floating IPs this host routes through its fip namespace (distributed ones)."""
    if router.gw_port is None or not router.distributed or not config.distributes_fips:
        return ()
    return _on_gateway_network(router, [f for f in router.floating_ips
                                        if f.bound_to(config.host)])


def central_fips(config: AgentConfig, router: Router) -> tuple[FloatingIp, ...]:
    """Floating IPs this host serves on the router's qg-: all of a legacy router's, the
    ``dvr_snat_bound`` ones of a distributed router on its SNAT host."""
    if not hosts_gateway(config, router):
        return ()
    if not router.distributed:
        return _on_gateway_network(router, list(router.floating_ips))
    return _on_gateway_network(router, [f for f in router.floating_ips if f.dvr_snat_bound])
