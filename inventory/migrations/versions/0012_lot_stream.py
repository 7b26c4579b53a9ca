"""The stream a lot's sale sells in: SQL knew a lot's order by its sale, not by its show.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add sales.lot_stream_id (NULL for every sale that is not a lot's)."""
    op.add_column("sales", sa.Column("lot_stream_id", sa.String(64), nullable=True))
    op.create_index("ix_sales_lot_stream_id", "sales", ["lot_stream_id"])


def downgrade() -> None:
    """Drop sales.lot_stream_id."""
    op.drop_index("ix_sales_lot_stream_id", table_name="sales")
    with op.batch_alter_table("sales") as batch:
        batch.drop_column("lot_stream_id")
