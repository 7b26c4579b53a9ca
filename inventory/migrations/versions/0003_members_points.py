"""Store members and their append-only points ledger (issue 12).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create store_members and points_ledger."""
    op.create_table(
        "store_members",
        sa.Column("host_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("joined_at_ms", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "points_ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("host_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("delta", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(80), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_points_member", "points_ledger", ["host_id", "user_id"])
    op.create_index(
        "ux_points_once", "points_ledger", ["host_id", "user_id", "reason", "ref"], unique=True
    )


def downgrade() -> None:
    """Drop store_members and points_ledger."""
    op.drop_table("points_ledger")
    op.drop_table("store_members")
