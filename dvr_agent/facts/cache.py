"""The agent's cache of facts: apply one event, say which state keys it touched.

No I/O and no locks (the agent serialises access). Every mutation returns the keys whose
desired state may have changed, found through indexes (subnet -> routers, network ->
VIFs, device name -> key, ...) rather than by recompiling the host: an ARP event touches
the routers on one subnet and nothing else.

What is *present* on this host (routers, networks, fip namespaces) is decided here, from
the facts the server sent, because allocations follow presence: a network gets a local
VLAN when it arrives and gives it back when it leaves.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from dvr_agent import names, state
from dvr_agent.facts import placement
from dvr_agent.facts.allocations import Allocations
from dvr_agent.facts.config import AgentConfig
from dvr_agent.facts.indexes import RouterIndex, router_devices
from dvr_agent.facts.presence import Presence
from dvr_agent.facts.tables import ArpTables, L2Tables
from dvr_agent.models import (
    ArpEntry,
    FdbNetwork,
    FloatingIp,
    HostMac,
    LocalVif,
    Port,
    Router,
    Segment,
    TunnelPeer,
)

Keys = frozenset[str]


class SyncedKeys(frozenset):
    """The keys a full router sync touched, with the router keys it added and removed."""

    appeared: Keys
    vanished: Keys

    def __new__(cls, keys: Iterable[str], appeared: Keys, vanished: Keys) -> SyncedKeys:
        self = super().__new__(cls, keys)
        self.appeared, self.vanished = appeared, vanished
        return self


F = TypeVar("F", bound=Callable[..., Any])


def _mutation(method: F) -> F:
    """Serve the allocation claims of a public mutation once, when the outermost returns."""
    @functools.wraps(method)
    def wrapper(self: Facts, *args: Any, **kwargs: Any) -> Any:
        self._depth += 1
        try:
            return method(self, *args, **kwargs)
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._presence.flush()
    return wrapper  # type: ignore[return-value]


class Facts:
    """Everything one host's agent knows; see the module docstring."""

    def __init__(self, config: AgentConfig, saved: Allocations | None = None) -> None:
        self._config = config
        self._presence = Presence(saved)
        self._depth = 0
        self.arp = ArpTables()
        self.l2 = L2Tables()
        self._own_mac: str | None = None
        self._remote_macs: dict[str, str] = {}  # host -> DVR MAC
        self._routers: dict[str, Router] = {}
        self._vifs: dict[str, LocalVif] = {}
        self._segments: dict[str, Segment] = {}
        self._fip_gw_ports: dict[str, Port] = {}  # ext net -> our agent gateway port
        self._ofports: dict[str, int] = {}
        self._index = RouterIndex()
        self._net_vifs: dict[str, set[str]] = defaultdict(set)
        self._subnet_vifs: dict[str, set[str]] = defaultdict(set)
        self._fip_ready: set[str] = set()  # external networks whose fip namespace is wanted

    # ------------------------------------------------------------ queries

    @property
    def config(self) -> AgentConfig:
        return self._config

    @property
    def own_dvr_mac(self) -> str | None:
        return self._own_mac

    @property
    def remote_dvr_macs(self) -> Mapping[str, str]:
        return self._remote_macs

    @property
    def routers(self) -> Mapping[str, Router]:
        return self._routers

    @property
    def vifs(self) -> Mapping[str, LocalVif]:
        return self._vifs

    def segment(self, network_id: str) -> Segment | None:
        return self._segments.get(network_id)

    def ofport(self, port_name: str) -> int | None:
        return self._ofports.get(port_name)

    def local_vlan(self, network_id: str) -> int | None:
        return self._presence.alloc.vlans.get(network_id)

    def link_local_index(self, router_id: str) -> int | None:
        return self._presence.alloc.link_local.get(router_id)

    def fip_priority(self, fip: FloatingIp) -> int | None:
        return self._presence.alloc.fip_priorities.get(str(fip.floating_ip))

    def local_networks(self) -> Keys:
        return self._presence.networks()

    def is_local_network(self, network_id: str) -> bool:
        """``network_id in local_networks()``, without building the set (every pass asks)."""
        return self._presence.is_present(network_id)

    def vifs_on_subnet(self, subnet_id: str) -> tuple[LocalVif, ...]:
        return tuple(self._vifs[n] for n in sorted(self._subnet_vifs.get(subnet_id, ())))

    def vifs_on_network(self, network_id: str) -> tuple[LocalVif, ...]:
        return tuple(self._vifs[n] for n in sorted(self._net_vifs.get(network_id, ())))

    def router_interface_macs(self, network_id: str) -> frozenset[str]:
        """Gateway MACs of hosted routers on a network: the same on every host, never FDB."""
        return frozenset(p.mac for r in self.routers_on_network(network_id)
                         for p in r.interfaces if p.network_id == network_id)

    def routers_on_network(self, network_id: str) -> tuple[Router, ...]:
        """Hosted routers with an interface (qr-) on ``network_id``, in id order."""
        return tuple(self._routers[r] for r in sorted(self._index.by_network.get(network_id, ()))
                     if any(p.network_id == network_id for p in self._routers[r].interfaces))

    def is_snat_host(self, router: Router) -> bool:
        return placement.is_snat_host(self._config, router)

    def hosts_gateway(self, router: Router) -> bool:
        return placement.hosts_gateway(self._config, router)

    def local_fips(self, router: Router) -> tuple[FloatingIp, ...]:
        """FIPs this host routes for ``router`` through its fip namespace."""
        return placement.local_fips(self._config, router)

    def central_fips(self, router: Router) -> tuple[FloatingIp, ...]:
        """FIPs this host serves on the router's qg- (legacy, or dvr_snat_bound)."""
        return placement.central_fips(self._config, router)

    def floating_ip_port(self, ext_net_id: str, address: str) -> str | None:
        """The port of the floating IP at ``address`` that this host routes through
        fip-<ext_net_id>, if there is one."""
        for router in self.fip_routers(ext_net_id):
            for fip in self.local_fips(router):
                if str(fip.floating_ip) == address:
                    return fip.port_id
        return None

    def fip_gateway_port(self, ext_net_id: str) -> Port | None:
        """Our FIP agent gateway port on ``ext_net_id``: as set, else from a router's sync."""
        explicit = self._fip_gw_ports.get(ext_net_id)
        if explicit is not None:
            return explicit
        for rid in sorted(self._index.with_fips.get(ext_net_id, ())):
            for port in self._routers[rid].fip_agent_interfaces:
                if port.network_id == ext_net_id:
                    return port
        return None

    def fip_networks(self) -> Keys:
        """External networks whose fip namespace must exist here."""
        return frozenset(self._fip_ready)

    def is_fip_network(self, ext_net_id: str) -> bool:
        return ext_net_id in self._fip_ready

    def fip_routers(self, ext_net_id: str) -> tuple[Router, ...]:
        """Routers connected to fip-E: with a gateway on E and a FIP routed here."""
        if ext_net_id not in self._fip_ready:
            return ()
        return tuple(self._routers[r] for r in sorted(self._index.with_fips.get(ext_net_id, ())))

    def allocations(self) -> Allocations:
        """What to persist so that a restarted agent hands out the same numbers."""
        return self._presence.alloc.snapshot()

    def allocations_version(self) -> int:
        return self._presence.alloc.version()

    def subnets_without_arp_table(self) -> frozenset[str]:
        """Subnets of hosted routers not yet filled from ``get_ports_by_subnet``."""
        return frozenset(s for s in self._index.by_subnet if not self.arp.known(s))

    # ------------------------------------------------------------ config, MACs, tunnels

    @_mutation
    def set_config(self, config: AgentConfig) -> Keys:
        """Rare (a restart with new settings): re-derive every router's place here."""
        before = self._all_keys()
        routers = list(self._routers.values())
        old_nets = {r.id: self._router_networks(r) for r in routers}
        for router in routers:
            self._replace_router(router, None, touch_presence=False)
        self._config = config
        for router in routers:
            self._replace_router(None, router, touch_presence=False)
            self._presence.set_user(state.router_key(router.id), old_nets[router.id],
                                    self._router_networks(router))
        self._refresh_fips(set(self._index.by_external) | self._fip_ready, relink=True)
        return before | self._all_keys()

    def set_dvr_macs(self, macs: Iterable[HostMac]) -> Keys:
        """``get_dvr_mac_address_list`` / ``dvr_mac_address_update``: the complete list."""
        own = self._own_mac
        remote = {}
        for entry in macs:
            if entry.host == self._config.host:
                own = entry.mac
            else:
                remote[entry.host] = entry.mac
        keys = set()
        if remote != self._remote_macs:
            self._remote_macs = remote
            keys.add(state.HOST_KEY)
        return frozenset(keys) | self.set_own_dvr_mac(own)

    def set_own_dvr_mac(self, mac: str | None) -> Keys:
        """``get_dvr_mac_address_by_host``: every router's DVR flows rewrite to it."""
        if mac == self._own_mac:
            return frozenset()
        self._own_mac = mac
        return frozenset({state.HOST_KEY, *map(state.router_key, self._routers)})

    def set_tunnel_peers(self, peers: Iterable[TunnelPeer]) -> Keys:
        """``tunnel_sync`` reply: the complete list (our own endpoint is skipped)."""
        wanted = {p.ip: p for p in peers if p.ip != self._config.local_ip}
        if wanted == self.l2.peers:
            return frozenset()
        self.l2.peers = wanted
        return self._tunnel_keys()

    def add_tunnel_peer(self, peer: TunnelPeer) -> Keys:
        """``tunnel_update``."""
        if peer.ip == self._config.local_ip or self.l2.peers.get(peer.ip) == peer:
            return frozenset()
        self.l2.peers[peer.ip] = peer
        return self._tunnel_keys()

    def remove_tunnel_peer(self, peer: TunnelPeer) -> Keys:
        """``tunnel_delete``."""
        if self.l2.peers.pop(peer.ip, None) is None:
            return frozenset()
        return self._tunnel_keys()

    def add_fdb(self, entries: Iterable[FdbNetwork]) -> Keys:
        """``add_fdb_entries``: teaches how networks are carried (their segment).

        The entries themselves do not shape flows (see compiler.network): only facts
        that a restarted agent can learn again may, or a restart would change flows.
        """
        keys: set[str] = set()
        for net in entries:
            if net.network_id not in self._segments:
                keys |= self.set_segment(net.network_id, net.segment)
        return frozenset(keys)

    def remove_fdb(self, entries: Iterable[FdbNetwork]) -> Keys:
        """``remove_fdb_entries``: nothing to undo (see add_fdb)."""
        return frozenset()

    # ------------------------------------------------------------ routers

    @_mutation
    def set_routers(self, routers: Iterable[Router]) -> SyncedKeys:
        """A full ``sync_routers``: the given routers are all the routers of this host."""
        new = {r.id: r for r in routers if placement.hostable(self._config, r)}
        before = set(self._routers)
        keys: set[str] = set()
        for rid in sorted(before - new.keys()):
            keys |= self.remove_router(rid)
        for rid in sorted(new):
            if self._routers.get(rid) != new[rid]:
                keys |= self.update_router(new[rid])
        appeared = frozenset(map(state.router_key, new.keys() - before))
        vanished = frozenset(map(state.router_key, before - new.keys()))
        return SyncedKeys(keys, appeared, vanished)

    @_mutation
    def update_router(self, router: Router) -> Keys:
        """A ``sync_routers`` answer for one router (``routers_updated``)."""
        if not placement.hostable(self._config, router):
            return self.remove_router(router.id)
        old = self._routers.get(router.id)
        if old == router:
            return frozenset()
        return self._replace_router(old, router)

    @_mutation
    def remove_router(self, router_id: str) -> Keys:
        """``router_removed_from_agent`` / ``router_deleted`` / gone from a full sync."""
        old = self._routers.get(router_id)
        if old is None:
            return frozenset()
        keys = self._replace_router(old, None)
        self.arp.drop_unused(old.subnet_ids(), self._index.by_subnet)
        return keys

    # ------------------------------------------------------------ ARP tables

    def set_subnet_ports(self, subnet_id: str, ports: Iterable[Port]) -> Keys:
        """``get_ports_by_subnet``: the complete ARP table of one subnet."""
        if not self._index.by_subnet.get(subnet_id):
            return frozenset()
        if not self.arp.replace(subnet_id, ports):
            return frozenset()
        return self._router_keys(self._index.by_subnet[subnet_id])

    def add_arp_entry(self, entry: ArpEntry) -> Keys:
        """``add_arp_entry``; ignored unless the named router is hosted here on that subnet."""
        if entry.subnet_id not in self._routers_subnets(entry.router_id):
            return frozenset()
        if not self.arp.add(entry.subnet_id, entry.ip, entry.mac):
            return frozenset()
        return self._router_keys(self._index.by_subnet[entry.subnet_id])

    def del_arp_entry(self, entry: ArpEntry) -> Keys:
        if entry.subnet_id not in self._routers_subnets(entry.router_id):
            return frozenset()
        if not self.arp.remove(entry.subnet_id, entry.ip, entry.mac):
            return frozenset()
        return self._router_keys(self._index.by_subnet[entry.subnet_id])

    # ------------------------------------------------------------ VIFs, segments, ofports

    @_mutation
    def set_vif(self, vif: LocalVif) -> Keys:
        """A VIF seen on br-int with the server's details for it (added or changed)."""
        old = self._vifs.get(vif.port_name)
        if old == vif:
            return frozenset()
        keys = self._unindex_vif(old) if old else frozenset()
        self._vifs[vif.port_name] = vif
        self._net_vifs[vif.network_id].add(vif.port_name)
        for fixed in vif.fixed_ips:
            self._subnet_vifs[fixed.subnet_id].add(vif.port_name)
        self._presence.set_user(f"vif:{vif.port_name}", [old.network_id] if old else [],
                                [vif.network_id])
        return keys | self._vif_keys(vif)

    @_mutation
    def remove_vif(self, port_name: str) -> Keys:
        """The VIF left br-int."""
        vif = self._vifs.get(port_name)
        if vif is None:
            return frozenset()
        keys = self._unindex_vif(vif)
        self._presence.set_user(f"vif:{port_name}", [vif.network_id], [])
        return keys

    def _unindex_vif(self, vif: LocalVif) -> Keys:
        del self._vifs[vif.port_name]
        self._net_vifs[vif.network_id].discard(vif.port_name)
        for fixed in vif.fixed_ips:
            self._subnet_vifs[fixed.subnet_id].discard(vif.port_name)
        return self._vif_keys(vif)

    def set_segment(self, network_id: str, segment: Segment) -> Keys:
        """How a network is carried (device details, ``port_update``, l2pop)."""
        if self._segments.get(network_id) == segment:
            return frozenset()
        self._segments[network_id] = segment
        keys = set(self._network_keys([network_id]))
        keys |= self._router_keys(self._index.by_network.get(network_id, ()))
        if network_id in self._fip_ready:
            keys.add(state.fip_key(network_id))
        return frozenset(keys)

    @_mutation
    def set_fip_gateway_port(self, ext_net_id: str, port: Port | None) -> Keys:
        """``get_agent_gateway_port`` (None: the server has none for us)."""
        if self._fip_gw_ports.get(ext_net_id) == port:
            return frozenset()
        if port is None:
            self._fip_gw_ports.pop(ext_net_id, None)
        else:
            self._fip_gw_ports[ext_net_id] = port
        return frozenset({state.fip_key(ext_net_id)}) | self._refresh_fips({ext_net_id})

    def set_ofport(self, port_name: str, ofport: int | None) -> Keys:
        """OVSDB says a port has (or lost) an OpenFlow port number."""
        if self._ofports.get(port_name) == ofport:
            return frozenset()
        if ofport is None or ofport <= 0:
            self._ofports.pop(port_name, None)
        else:
            self._ofports[port_name] = ofport
        return self._ofport_keys(port_name)

    # ------------------------------------------------------------ allocations

    def forget_unclaimed_allocations(self) -> None:
        """After the first full sync: restored values nobody claimed go back to the pool."""
        self._presence.alloc.forget_unclaimed()

    # ------------------------------------------------------------ internals

    def _all_keys(self) -> Keys:
        return frozenset({state.HOST_KEY, *map(state.router_key, self._routers),
                          *map(state.network_key, self.local_networks()),
                          *map(state.fip_key, self._fip_ready)})

    def _router_keys(self, router_ids: Iterable[str]) -> Keys:
        return frozenset(map(state.router_key, router_ids))

    def _network_keys(self, network_ids: Iterable[str]) -> Keys:
        return frozenset(state.network_key(n) for n in network_ids
                         if self._presence.is_present(n))

    def _tunnel_keys(self) -> Keys:
        return frozenset({state.HOST_KEY}) | self._network_keys(self.local_networks())

    def _routers_subnets(self, router_id: str) -> frozenset[str]:
        router = self._routers.get(router_id)
        return router.subnet_ids() if router else frozenset()

    def _vif_keys(self, vif: LocalVif) -> Keys:
        routers = set().union(*(self._index.by_subnet.get(x.subnet_id, ())
                                for x in vif.fixed_ips))
        return frozenset({state.network_key(vif.network_id)}) | self._router_keys(routers)

    def _ofport_keys(self, port_name: str) -> Keys:
        if port_name in self._vifs:
            return self._vif_keys(self._vifs[port_name])
        if port_name in self._index.device_keys:
            return frozenset({self._index.device_keys[port_name]})
        if port_name.startswith("vxlan-"):
            return self._tunnel_keys()
        if port_name.startswith(names.FIP_EXT_DEV_PREFIX):
            return frozenset(map(state.fip_key, self._fip_ready))
        return frozenset()

    def _router_networks(self, router: Router) -> set[str]:
        nets = set(router.network_ids())
        if self.hosts_gateway(router):
            nets.add(router.gw_port.network_id)  # qg- on the external network
        return nets

    def _replace_router(self, old: Router | None, new: Router | None,
                        touch_presence: bool = True) -> Keys:
        """Move the indexes and the router's network use from ``old`` to ``new``."""
        rid = (old or new).id
        key = state.router_key(rid)
        old_nets = self._router_networks(old) if old else set()
        new_nets = self._router_networks(new) if new else set()
        if old is not None:
            self._index.remove(old, old_nets, router_devices(old, self.hosts_gateway(old)))
            del self._routers[rid]
        if new is not None:
            self._routers[rid] = new
            self._index.add(new, new_nets, router_devices(new, self.hosts_gateway(new)),
                            bool(self.local_fips(new)))
        keys = {key} | {state.network_key(n) for n in old_nets | new_nets}
        # routers that share an internal network share a flow only one of them may own
        # (dvr_flows.takes_dvr_mac_frames): a change of one may move it to another
        shared = {p.network_id for r in (old, new) if r is not None for p in r.interfaces}
        keys |= {state.router_key(r.id) for n in shared for r in self.routers_on_network(n)}
        if touch_presence:
            self._presence.set_user(key, old_nets, new_nets)
            exts = {r.external_network_id for r in (old, new) if r and r.external_network_id}
            keys |= self._refresh_fips(exts)
            self._link_router(rid)
        return frozenset(keys)

    def _refresh_fips(self, ext_nets: Iterable[str], relink: bool = False) -> set[str]:
        """Re-decide fip-E for these external networks.

        fip-E is wanted while a hosted router with its gateway on E has a FIP routed here
        and the server gave us a gateway port on E (seed rule: created with the first
        floating IP on the host, deleted with the last). When that flips, every router on
        E is connected to (or cut from) it; otherwise only the router that changed is.
        """
        keys: set[str] = set()
        for ext in sorted(ext_nets):
            wanted = (bool(self._index.with_fips.get(ext))
                      and self.fip_gateway_port(ext) is not None)
            was = ext in self._fip_ready
            if wanted:
                self._fip_ready.add(ext)
            else:
                self._fip_ready.discard(ext)
            self._presence.set_user(state.fip_key(ext), [ext] if was else [],
                                    [ext] if wanted else [])
            if wanted or was:
                keys.add(state.fip_key(ext))
            if wanted != was or relink:
                keys.add(state.network_key(ext))
                members = sorted(self._index.by_external.get(ext, ()))
                for rid in members:
                    self._link_router(rid)
                keys |= self._router_keys(members)
        return keys

    def _link_router(self, router_id: str) -> bool:
        """Connect the router to its fip namespace (or not), with the FIPs it routes here."""
        router = self._routers.get(router_id)
        if router is None:
            return self._presence.set_router_fips(router_id, False, ())
        fips = [str(f.floating_ip) for f in self.local_fips(router)]
        linked = router.external_network_id in self._fip_ready and bool(fips)
        return self._presence.set_router_fips(router_id, linked, fips)
