"""Login attempts in flight counted apart from failures, so right passwords sent at once do not lock an account.

Revision ID: 0023
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade():
    """Add the in-flight count and the time a slot was last taken or given back."""
    with op.batch_alter_table("login_throttles") as batch:
        batch.add_column(sa.Column("in_flight", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("in_flight_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    """Drop both columns (checks in flight then are simply not counted)."""
    with op.batch_alter_table("login_throttles") as batch:
        batch.drop_column("in_flight_at")
        batch.drop_column("in_flight")
