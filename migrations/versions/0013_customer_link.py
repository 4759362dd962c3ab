"""The customer page of the QR handover: a store's opening hours.

Revision ID: 0013
Revises: 0019
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    """Add stock_locations.opening_hours (free text, one line per row; empty: not shown)."""
    with op.batch_alter_table("stock_locations") as batch:
        batch.add_column(sa.Column("opening_hours", sa.Text(), nullable=False, server_default=""))


def downgrade():
    """Drop the column."""
    with op.batch_alter_table("stock_locations") as batch:
        batch.drop_column("opening_hours")
