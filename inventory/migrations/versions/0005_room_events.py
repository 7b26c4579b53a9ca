"""The room-event log: pins, sales and chat of each show, kept for its replay.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create room_events, keyed by (stream_id, seq): the room's own order."""
    op.create_table(
        "room_events",
        sa.Column("stream_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )


def downgrade() -> None:
    """Drop room_events."""
    op.drop_table("room_events")
