"""Product owners: who may edit, price, pin and sell a product.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add products.owner_id; existing rows keep NULL, which only admins may change."""
    op.add_column("products", sa.Column("owner_id", sa.String(64), nullable=True))
    op.create_index("ix_products_owner_id", "products", ["owner_id"])


def downgrade() -> None:
    """Drop products.owner_id."""
    op.drop_index("ix_products_owner_id", table_name="products")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("owner_id")
