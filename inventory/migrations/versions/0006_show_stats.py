"""Show analytics: per-minute counters of each show (aggregates only, no user ids).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create show_stats, keyed by (stream_id, minute_ms, metric)."""
    op.create_table(
        "show_stats",
        sa.Column("stream_id", sa.String(64), primary_key=True),
        sa.Column("minute_ms", sa.BigInteger, primary_key=True),
        sa.Column("metric", sa.String(48), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    """Drop show_stats."""
    op.drop_table("show_stats")
