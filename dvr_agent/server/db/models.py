"""The topology and control-plane state as SQLAlchemy models (schema owned by alembic).

Names and shapes follow Neutron's tables where they exist (``dvr_host_macs``,
``ipallocations``, ``ml2_vxlan_endpoints``) so an operator's SQL habits carry over. IDs are
UUID4 strings, MACs are stored canonical (lower case, colons), times are naive UTC.
"""

from __future__ import annotations

import datetime
import uuid

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

UUID_LEN = 36


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime.datetime:
    """Naive UTC: what every column stores, whatever the database's own time zone."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Stamped:
    """Neutron's standard attributes: the agent never needs them, but payloads carry them."""

    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow,
                                                          onupdate=utcnow)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)


class Network(Stamped, Base):
    """A tenant VXLAN network (with its VNI) or an external flat network on a physnet."""

    __tablename__ = "networks"
    __table_args__ = (
        UniqueConstraint("network_type", "segmentation_id", name="uniq_networks_segment"),
        UniqueConstraint("physical_network", name="uniq_networks_physnet"),
    )
    id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), default="")
    project_id: Mapped[str] = mapped_column(String(255), default="")
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    network_type: Mapped[str] = mapped_column(String(32))
    segmentation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    physical_network: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mtu: Mapped[int] = mapped_column(Integer)

    subnets: Mapped[list[Subnet]] = relationship(back_populates="network",
                                                 order_by="Subnet.created_at")


class Subnet(Stamped, Base):
    __tablename__ = "subnets"
    id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), default="")
    project_id: Mapped[str] = mapped_column(String(255), default="")
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    cidr: Mapped[str] = mapped_column(String(64))
    ip_version: Mapped[int] = mapped_column(Integer)
    gateway_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)

    network: Mapped[Network] = relationship(back_populates="subnets")


class Port(Stamped, Base):
    """Every port: VM ports, router interfaces, gateways, csnat and FIP-agent-gateway ports."""

    __tablename__ = "ports"
    __table_args__ = (
        UniqueConstraint("network_id", "mac_address", name="uniq_ports_network_mac"),
    )
    id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), default="")
    project_id: Mapped[str] = mapped_column(String(255), default="")
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    mac_address: Mapped[str] = mapped_column(String(32))
    device_owner: Mapped[str] = mapped_column(String(255), default="", index=True)
    device_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    binding_host: Mapped[str] = mapped_column(String(255), default="", index=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)

    network: Mapped[Network] = relationship()
    fixed_ips: Mapped[list[IPAllocation]] = relationship(
        back_populates="port", cascade="all, delete-orphan", passive_deletes=True,
        order_by="IPAllocation.ip_address")
    allowed_address_pairs: Mapped[list[AllowedAddressPair]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True,
        order_by="(AllowedAddressPair.ip_address, AllowedAddressPair.mac_address)")


class AllowedAddressPair(Base):
    """An address a port may also use (a VIP), with the MAC it uses it with."""

    __tablename__ = "allowed_address_pairs"
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"),
                                         primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    mac_address: Mapped[str] = mapped_column(String(32), primary_key=True)


class IPAllocation(Base):
    """A fixed IP of a port; the primary key makes an address unique in its subnet."""

    __tablename__ = "ipallocations"
    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id"), primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"),
                                         index=True)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"))

    port: Mapped[Port] = relationship(back_populates="fixed_ips")
    subnet: Mapped[Subnet] = relationship()


class DistributedPortBinding(Base):
    """A DVR router interface port bound on one host: made on demand when H syncs the router.

    Neutron's ``ml2_distributed_port_bindings``: the same port (same MAC and IP) exists on
    every host that hosts the router, so its binding is per host.
    """

    __tablename__ = "distributed_port_bindings"
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"),
                                         primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    router_id: Mapped[str] = mapped_column(String(UUID_LEN), index=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")


class Router(Stamped, Base):
    """A router, distributed or legacy (centralized).

    ``snat_host`` is its binding to one dvr_snat agent's host: for a distributed router
    the host of its snat namespace (only while it has a gateway), for a legacy router the
    one host that runs all of it.
    """

    __tablename__ = "routers"
    id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), default="")
    project_id: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    snat_host: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    distributed: Mapped[bool] = mapped_column(Boolean, default=True)

    ports: Mapped[list[RouterPort]] = relationship(
        back_populates="router", cascade="all, delete-orphan", passive_deletes=True)
    routes: Mapped[list[RouterRoute]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True,
        order_by="(RouterRoute.destination, RouterRoute.nexthop)")


class RouterRoute(Base):
    """An extra route of a router (Neutron's ``routerroutes``)."""

    __tablename__ = "router_routes"
    router_id: Mapped[str] = mapped_column(ForeignKey("routers.id", ondelete="CASCADE"),
                                           primary_key=True)
    destination: Mapped[str] = mapped_column(String(64), primary_key=True)
    nexthop: Mapped[str] = mapped_column(String(64), primary_key=True)


class RouterPort(Base):
    """A port of a router: an interface, its gateway, or a csnat port.

    ``port_type`` names the role with the DVR owner names whatever the router's kind; the
    port's own ``device_owner`` says what agents see (``network:router_interface`` on a
    legacy router).
    """

    __tablename__ = "routerports"
    router_id: Mapped[str] = mapped_column(ForeignKey("routers.id", ondelete="CASCADE"),
                                           index=True)
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"),
                                         primary_key=True)
    port_type: Mapped[str] = mapped_column(String(255))

    router: Mapped[Router] = relationship(back_populates="ports")
    port: Mapped[Port] = relationship()


class FloatingIP(Stamped, Base):
    __tablename__ = "floatingips"
    __table_args__ = (
        UniqueConstraint("floating_network_id", "floating_ip_address",
                         name="uniq_floatingips_address"),
    )
    id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), default="")
    floating_ip_address: Mapped[str] = mapped_column(String(64))
    floating_network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    floating_port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"))
    fixed_port_id: Mapped[str | None] = mapped_column(
        ForeignKey("ports.id", ondelete="SET NULL"), nullable=True, index=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(
        ForeignKey("routers.id", ondelete="SET NULL"), nullable=True, index=True)
    last_known_router_id: Mapped[str | None] = mapped_column(String(UUID_LEN), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")


class FipAgentGatewayPort(Base):
    """The one FIP-agent-gateway (fg-) port of a host on an external network."""

    __tablename__ = "fip_agent_gateway_ports"
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"),
                                         unique=True)


class Agent(Base):
    """An agent as it reported itself: one row per (agent_type, host), like Neutron."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("agent_type", "host", name="uniq_agents_type_host"),)
    id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True, default=new_id)
    agent_type: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255), index=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    configurations: Mapped[str] = mapped_column(Text, default="{}")
    resource_versions: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_timestamp: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class TunnelEndpoint(Base):
    """A host's VXLAN endpoint, as ``tunnel_sync`` reported it (ml2_vxlan_endpoints)."""

    __tablename__ = "tunnel_endpoints"
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    tunnel_type: Mapped[str] = mapped_column(String(32), default="vxlan")
    udp_port: Mapped[int] = mapped_column(Integer, default=4789)


class DvrHostMac(Base):
    """The seed's table: one DVR MAC per host, allocated once and kept for good."""

    __tablename__ = "dvr_host_macs"
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    mac_address: Mapped[str] = mapped_column(String(32), unique=True)
