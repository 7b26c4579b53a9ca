"""Webhooks: the order-event outbox and the payment provider's applied events.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create webhook_outbox and payment_events."""
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("pending", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger, nullable=False),
        sa.Column("claimed_by", sa.String(80), nullable=False),
        sa.Column("done_urls", sa.Text, nullable=False),
        sa.Column("delivered_at_ms", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.String(200), nullable=False),
    )
    op.create_index("ix_webhook_outbox_due", "webhook_outbox", ["pending", "next_attempt_ms"])
    op.create_index("ix_webhook_outbox_order", "webhook_outbox", ["order_id", "id"])
    op.create_table(
        "payment_events",
        sa.Column("event_id", sa.String(100), primary_key=True),
        sa.Column("order_id", sa.String(40), nullable=False, index=True),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("received_at_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    """Drop payment_events and webhook_outbox."""
    op.drop_table("payment_events")
    op.drop_index("ix_webhook_outbox_order", "webhook_outbox")
    op.drop_index("ix_webhook_outbox_due", "webhook_outbox")
    op.drop_table("webhook_outbox")
