"""Initial schema: topology, agents, tunnel endpoints and dvr_host_macs.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("agent_type", sa.String(length=255), nullable=False),
        sa.Column("binary", sa.String(length=255), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("availability_zone", sa.String(length=255), nullable=True),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("configurations", sa.Text(), nullable=False),
        sa.Column("resource_versions", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_timestamp", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_type", "host", name="uniq_agents_type_host"),
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agents_host"), ["host"], unique=False)

    op.create_table(
        "dvr_host_macs",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("mac_address", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("host"),
        sa.UniqueConstraint("mac_address"),
    )
    op.create_table(
        "networks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("external", sa.Boolean(), nullable=False),
        sa.Column("network_type", sa.String(length=32), nullable=False),
        sa.Column("segmentation_id", sa.Integer(), nullable=True),
        sa.Column("physical_network", sa.String(length=64), nullable=True),
        sa.Column("mtu", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("network_type", "segmentation_id", name="uniq_networks_segment"),
        sa.UniqueConstraint("physical_network", name="uniq_networks_physnet"),
    )
    op.create_table(
        "routers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("snat_host", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("routers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_routers_snat_host"), ["snat_host"], unique=False)

    op.create_table(
        "tunnel_endpoints",
        sa.Column("ip_address", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("tunnel_type", sa.String(length=32), nullable=False),
        sa.Column("udp_port", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("ip_address"),
        sa.UniqueConstraint("host"),
    )
    op.create_table(
        "ports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("mac_address", sa.String(length=32), nullable=False),
        sa.Column("device_owner", sa.String(length=255), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("binding_host", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["networks.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("network_id", "mac_address", name="uniq_ports_network_mac"),
    )
    with op.batch_alter_table("ports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ports_binding_host"), ["binding_host"], unique=False)
        batch_op.create_index(batch_op.f("ix_ports_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ports_device_owner"), ["device_owner"], unique=False)
        batch_op.create_index(batch_op.f("ix_ports_network_id"), ["network_id"], unique=False)

    op.create_table(
        "subnets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("gateway_ip", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["networks.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("subnets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subnets_network_id"), ["network_id"], unique=False)

    op.create_table(
        "distributed_port_bindings",
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("router_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["port_id"], ["ports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("port_id", "host"),
    )
    with op.batch_alter_table("distributed_port_bindings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_distributed_port_bindings_router_id"), ["router_id"], unique=False
        )

    op.create_table(
        "fip_agent_gateway_ports",
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["networks.id"],
        ),
        sa.ForeignKeyConstraint(["port_id"], ["ports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("network_id", "host"),
        sa.UniqueConstraint("port_id"),
    )
    op.create_table(
        "floatingips",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("floating_ip_address", sa.String(length=64), nullable=False),
        sa.Column("floating_network_id", sa.String(length=36), nullable=False),
        sa.Column("floating_port_id", sa.String(length=36), nullable=False),
        sa.Column("fixed_port_id", sa.String(length=36), nullable=True),
        sa.Column("fixed_ip_address", sa.String(length=64), nullable=True),
        sa.Column("router_id", sa.String(length=36), nullable=True),
        sa.Column("last_known_router_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["fixed_port_id"], ["ports.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["floating_network_id"],
            ["networks.id"],
        ),
        sa.ForeignKeyConstraint(["floating_port_id"], ["ports.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["router_id"], ["routers.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "floating_network_id", "floating_ip_address", name="uniq_floatingips_address"
        ),
    )
    with op.batch_alter_table("floatingips", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_floatingips_fixed_port_id"), ["fixed_port_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_floatingips_floating_network_id"), ["floating_network_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_floatingips_router_id"), ["router_id"], unique=False)

    op.create_table(
        "ipallocations",
        sa.Column("subnet_id", sa.String(length=36), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=False),
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["networks.id"],
        ),
        sa.ForeignKeyConstraint(["port_id"], ["ports.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["subnet_id"],
            ["subnets.id"],
        ),
        sa.PrimaryKeyConstraint("subnet_id", "ip_address"),
    )
    with op.batch_alter_table("ipallocations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ipallocations_port_id"), ["port_id"], unique=False)

    op.create_table(
        "routerports",
        sa.Column("router_id", sa.String(length=36), nullable=False),
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("port_type", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["port_id"], ["ports.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["router_id"], ["routers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("port_id"),
    )
    with op.batch_alter_table("routerports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_routerports_router_id"), ["router_id"], unique=False)
