"""The built-in webhook inspector's received requests (development and the demo only; capped).

Revision ID: 0019
Revises: 0021
"""
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade():
    """Add the webhook_inspected_requests table."""
    op.create_table(
        "webhook_inspected_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.Column("webhook_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=120), nullable=False),
        sa.Column("content_encrypted", sa.Text(), nullable=False),
        sa.Column("verdict", sa.String(length=24), nullable=False),
        sa.Column("verdict_detail", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["webhook_subscriptions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_inspected_requests") as batch:
        batch.create_index(batch.f("ix_webhook_inspected_requests_subscription_id"), ["subscription_id"],
                           unique=False)


def downgrade():
    """Drop the webhook_inspected_requests table."""
    with op.batch_alter_table("webhook_inspected_requests") as batch:
        batch.drop_index(batch.f("ix_webhook_inspected_requests_subscription_id"))
    op.drop_table("webhook_inspected_requests")
