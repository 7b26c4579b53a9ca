"""Member prices: what a member of the host's store pays for a product.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add products.member_price_cents (nullable: most products have none)."""
    op.add_column("products", sa.Column("member_price_cents", sa.BigInteger, nullable=True))


def downgrade() -> None:
    """Drop products.member_price_cents."""
    with op.batch_alter_table("products") as batch:
        batch.drop_column("member_price_cents")
