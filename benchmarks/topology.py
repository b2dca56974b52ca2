"""The benchmark topology, written into a dvr-server database before the server starts.

The scale of issue 9 (and DESIGN.md): N routers x 2 subnets x 20 VM ports, that is 40
permanent ARP entries per router, and N/5 floating IPs, all hosted on one compute node.

How it is written, and why:
- networks, subnets, routers, interfaces, gateways and floating IPs go through dvr-server's
  management endpoint *in-process*: the same validation and domain rules as dvrctl (csnat
  ports, the SNAT binding to the network node, the compute node's fg port), without a broker
  or one dvrctl process per object: ~35 ms a router;
- VM ports are rows written in bulk. A VM port has no rule beyond a free address and a MAC
  unique on its network, and ``port.create`` spends ~7 ms each planning notifications that
  nobody listens to yet (280 s for 40,000 ports, against ~2 s here).

Who is where:
- ``compute1``, the agent under test (agent_mode dvr): the first VM port of every subnet is
  bound there, so it hosts every router; the ports of the first N/5 routers' first subnet
  carry the floating IPs;
- ``network`` (dvr_snat; a heartbeat is recorded so that gateways are bound to it): snat-R;
- ``compute2`` .. ``compute9``: every other VM port (rows only: ARP entries for compute1).
``network`` and ``compute2`` have VXLAN endpoints, so br-tun floods to two peers.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import json
import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from dvr_agent.rpc import protocol
from dvr_agent.server.db import api as db_api
from dvr_agent.server.db import migrate, models
from dvr_agent.server.domain import notifications as notify
from dvr_agent.server.domain.settings import Settings
from dvr_agent.server.domain.vm_ports import OWNER as VM_OWNER
from dvr_agent.server.rpc.management import ManagementEndpoint
from dvr_agent.server.rpc.plugin import PluginEndpoint
from dvr_agent.server.rpc.reports import ReportsEndpoint
from dvr_agent.server.service import ControlPlane
from tests.fixtures.server_world import CONTEXT, l3_state, ovs_state

VERSION = 2  # bump when the layout changes: cached databases are rebuilt
HOST = "compute1"
NETWORK_NODE = "network"
OTHER_HOSTS = tuple(f"compute{i}" for i in range(2, 10))
TUNNEL_IPS = {HOST: "192.0.2.11", NETWORK_NODE: "192.0.2.2", "compute2": "192.0.2.12"}
SUBNETS_PER_ROUTER = 2
PORTS_PER_SUBNET = 20
FIRST_VM_HOST_OCTET = 10  # VM ports take .10 .. .29 of each /24
EXTERNAL_CIDR = "198.18.0.0/15"  # RFC 2544 benchmarking space: room for every gateway
EXTERNAL_GATEWAY = "198.18.0.1"  # the upstream router, in the harness's upstream namespace


@dataclass(frozen=True)
class VmPort:
    """A VM port bound to compute1 (plugged only when a scenario plugs it)."""

    id: str
    network_id: str
    subnet_id: str
    ip: str
    mac: str
    prefixlen: int
    gateway_ip: str


@dataclass(frozen=True)
class RouterSpec:
    id: str
    interface_ports: tuple[str, ...]  # its qr- ports, one per subnet
    local_ports: tuple[VmPort, ...]  # compute1's port on each of its subnets
    floating_ip: str | None  # the address mapped to local_ports[0], if any


@dataclass(frozen=True)
class Topology:
    routers_count: int
    floating_ips: int
    external_network_id: str
    routers: tuple[RouterSpec, ...]

    @property
    def arp_entries(self) -> int:
        """Permanent neighbours compute1 must hold: every VM port and csnat port per subnet."""
        return self.routers_count * SUBNETS_PER_ROUTER * (PORTS_PER_SUBNET + 1)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Topology:
        data = json.loads(text)
        routers = tuple(RouterSpec(id=r["id"], floating_ip=r["floating_ip"],
                                   interface_ports=tuple(r["interface_ports"]),
                                   local_ports=tuple(VmPort(**p) for p in r["local_ports"]))
                        for r in data.pop("routers"))
        return cls(routers=routers, **data)


def subnet_cidr(index: int) -> ipaddress.IPv4Network:
    """10.x.y.0/24 for subnet ``index`` (room for 65,536 subnets)."""
    return ipaddress.ip_network(f"10.{index // 256}.{index % 256}.0/24")


def vm_mac(index: int) -> str:
    """A MAC per VM port, under the server's base (fa:16:3e) and unique across the build."""
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in index.to_bytes(3, "big"))


class _Builder:
    def __init__(self, db: db_api.Database) -> None:
        self._plane = ControlPlane(db, Settings(), self._discard)
        self._management = ManagementEndpoint(self._plane)

    @staticmethod
    def _discard(notes: list[notify.Notification]) -> None:
        """No agent listens while the topology is written: what would be sent is dropped."""

    def ctl(self, command: str, **args: Any) -> Any:
        return self._management.execute(CONTEXT, command, args)

    def hosts(self) -> None:
        reports = ReportsEndpoint(self._plane)
        reports.report_state(CONTEXT, **l3_state(NETWORK_NODE, protocol.AGENT_MODE_DVR_SNAT,
                                                 start=True))
        plugin = PluginEndpoint(self._plane)
        for host, ip in TUNNEL_IPS.items():
            if host != HOST:
                reports.report_state(CONTEXT, **ovs_state(host, ip))
                plugin.tunnel_sync(CONTEXT, tunnel_ip=ip, tunnel_type="vxlan", host=host)

    def router(self, index: int, external: str) -> tuple[str, list[str], list[dict[str, Any]]]:
        """A router with its subnets and gateway: (router id, interface port ids, subnets)."""
        router_id = self.ctl("router.create", name=f"bench-r{index}")["id"]
        interfaces, subnets = [], []
        for s in range(SUBNETS_PER_ROUTER):
            n = index * SUBNETS_PER_ROUTER + s
            network = self.ctl("network.create", name=f"bench-n{n}")
            subnet = self.ctl("subnet.create", network=network["id"], cidr=str(subnet_cidr(n)),
                              name=f"bench-s{n}")
            interfaces.append(self.ctl("router.add_interface", router=router_id,
                                       subnet=subnet["id"])["port_id"])
            subnets.append(subnet)
        self.ctl("router.set_gateway", router=router_id, network=external)
        return router_id, interfaces, subnets

    def vm_ports(self, subnets: list[tuple[dict[str, Any], int]]) -> list[VmPort]:
        """Every VM port of ``subnets`` (subnet, first MAC index) in one transaction;
        returns compute1's port on each."""
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        port_rows, ip_rows, local = [], [], []
        for subnet, mac_base in subnets:
            cidr = ipaddress.ip_network(subnet["cidr"])
            for p in range(PORTS_PER_SUBNET):
                port_id = models.new_id()
                host = HOST if p == 0 else OTHER_HOSTS[p % len(OTHER_HOSTS)]
                ip, mac = str(cidr[FIRST_VM_HOST_OCTET + p]), vm_mac(mac_base + p + 1)
                port_rows.append({"id": port_id, "name": "", "project_id": "",
                                  "network_id": subnet["network_id"], "mac_address": mac,
                                  "device_owner": VM_OWNER, "device_id": models.new_id(),
                                  "binding_host": host, "status": "DOWN",
                                  "admin_state_up": True, "created_at": now,
                                  "updated_at": now, "revision_number": 0})
                ip_rows.append({"subnet_id": subnet["id"], "ip_address": ip, "port_id": port_id,
                                "network_id": subnet["network_id"]})
                if host == HOST:
                    local.append(VmPort(id=port_id, network_id=subnet["network_id"],
                                        subnet_id=subnet["id"], ip=ip, mac=mac,
                                        prefixlen=cidr.prefixlen,
                                        gateway_ip=subnet["gateway_ip"]))

        def write(session: Session) -> notify.Outcome:
            session.execute(insert(models.Port), port_rows)
            session.execute(insert(models.IPAllocation), ip_rows)
            return notify.Outcome(None)

        self._plane.change(write)
        return local


def build(database_path: str, routers: int, floating_ips: int | None = None) -> Topology:
    """Write the topology into a new SQLite database at ``database_path`` (schema at head)."""
    if os.path.exists(database_path):
        os.unlink(database_path)
    fips = routers // 5 if floating_ips is None else floating_ips
    db = db_api.Database(f"sqlite:///{database_path}")
    try:
        migrate.upgrade(db.engine)
        builder = _Builder(db)
        builder.hosts()
        external = builder.ctl("network.create", name="public", external=True,
                               physnet="physnet1")["id"]
        builder.ctl("subnet.create", network=external, cidr=EXTERNAL_CIDR,
                    gateway=EXTERNAL_GATEWAY, name="public")
        specs = []
        for r in range(routers):
            router_id, interfaces, subnets = builder.router(r, external)
            base = r * SUBNETS_PER_ROUTER * PORTS_PER_SUBNET
            local = builder.vm_ports([(s, base + i * PORTS_PER_SUBNET)
                                      for i, s in enumerate(subnets)])
            address = None
            if r < fips:
                address = builder.ctl("floatingip.create", network=external,
                                      port=local[0].id)["floating_ip_address"]
            specs.append(RouterSpec(id=router_id, interface_ports=tuple(interfaces),
                                    local_ports=tuple(local), floating_ip=address))
    finally:
        db.dispose()
    return Topology(routers_count=routers, floating_ips=fips, external_network_id=external,
                    routers=tuple(specs))


def cached(cache_dir: str, routers: int) -> tuple[str, Topology]:
    """The database and topology for ``routers``, built once per layout VERSION."""
    os.makedirs(cache_dir, exist_ok=True)
    stem = os.path.join(cache_dir, f"topology-v{VERSION}-n{routers}")
    database, description = stem + ".sqlite", stem + ".json"
    if os.path.exists(database) and os.path.exists(description):
        with open(description) as f:
            return database, Topology.from_json(f.read())
    topology = build(database + ".tmp", routers)
    os.replace(database + ".tmp", database)
    with open(description + ".tmp", "w") as f:
        f.write(topology.to_json())
    os.replace(description + ".tmp", description)
    return database, topology
