"""Rehearsals: a stream marked as a host's practice, and the flag frozen on each of its sales.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add streams.rehearsal and sales.rehearsal (false for every existing row)."""
    for table in ("streams", "sales"):
        op.add_column(
            table,
            sa.Column("rehearsal", sa.Boolean, nullable=False, server_default=sa.false()),
        )


def downgrade() -> None:
    """Drop both columns."""
    for table in ("sales", "streams"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("rehearsal")
