"""The sale's own member price: a sale rebuilt from SQL took the product's, edited since.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add sales.member_price_cents (NULL for sales made before it: they did not keep theirs)."""
    op.add_column("sales", sa.Column("member_price_cents", sa.BigInteger, nullable=True))


def downgrade() -> None:
    """Drop sales.member_price_cents."""
    with op.batch_alter_table("sales") as batch:
        batch.drop_column("member_price_cents")
