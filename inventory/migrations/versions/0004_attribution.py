"""Share-link attribution: last touches, order attributions, product commissions (issue 12).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create attribution_touches, order_attributions and product_commissions."""
    op.create_table(
        "attribution_touches",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("stream_id", sa.String(64), primary_key=True),
        sa.Column("promoter_id", sa.String(64), nullable=False, index=True),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "order_attributions",
        sa.Column("order_id", sa.String(40), sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("promoter_id", sa.String(64), nullable=False, index=True),
        sa.Column("stream_id", sa.String(64), nullable=False, index=True),
        sa.Column("commission_bp", sa.Integer, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "product_commissions",
        sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id"), primary_key=True),
        sa.Column("rate_bp", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    """Drop the attribution tables."""
    for table in ("product_commissions", "order_attributions", "attribution_touches"):
        op.drop_table(table)
