"""The hold period: a store's hold days, a package's pick-up-by date, reminder and expiry, and the sweep's runs.

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    """Add the hold columns and the hold_sweep_runs table."""
    with op.batch_alter_table("stock_locations") as batch:
        batch.add_column(sa.Column("hold_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("packages") as batch:
        batch.add_column(sa.Column("hold_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("hold_reminder_sent_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("hold_expired_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_packages_state_hold_until", ["state", "hold_until"], unique=False)
    op.create_table(
        "hold_sweep_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("reminded", sa.Integer(), nullable=False),
        sa.Column("expired", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("started_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["started_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade():
    """Drop the table and the columns."""
    op.drop_table("hold_sweep_runs")
    with op.batch_alter_table("packages") as batch:
        batch.drop_index("ix_packages_state_hold_until")
        for column in ("hold_expired_at", "hold_reminder_sent_at", "hold_until"):
            batch.drop_column(column)
    with op.batch_alter_table("stock_locations") as batch:
        batch.drop_column("hold_days")
