"""Coupon redemptions: the discount a coupon took off a paid order (issue 12).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the coupon_redemptions table."""
    op.create_table(
        "coupon_redemptions",
        sa.Column("order_id", sa.String(40), sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("coupon_id", sa.String(40), nullable=False, index=True),
        sa.Column("discount_cents", sa.BigInteger, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    """Drop the coupon_redemptions table."""
    op.drop_table("coupon_redemptions")
