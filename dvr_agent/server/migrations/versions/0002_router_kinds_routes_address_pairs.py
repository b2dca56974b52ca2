"""Legacy routers, extra routes and allowed address pairs.

``routers.distributed`` (existing routers stay distributed), ``router_routes`` (Neutron's
``routerroutes``) and ``allowed_address_pairs`` (Neutron's ``allowedaddresspairs``); both
new tables go with their router or port.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("routers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("distributed", sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
    op.create_table(
        "router_routes",
        sa.Column("router_id", sa.String(length=36), nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("nexthop", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["router_id"], ["routers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("router_id", "destination", "nexthop"),
    )
    op.create_table(
        "allowed_address_pairs",
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=False),
        sa.Column("mac_address", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["port_id"], ["ports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("port_id", "ip_address", "mac_address"),
    )


def downgrade() -> None:
    op.drop_table("allowed_address_pairs")
    op.drop_table("router_routes")
    with op.batch_alter_table("routers", schema=None) as batch_op:
        batch_op.drop_column("distributed")
