"""Sync jobs count the records they deactivated because Omnitron no longer has them.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    """Add sync_jobs.removed (existing jobs removed nothing)."""
    with op.batch_alter_table("sync_jobs") as batch:
        batch.add_column(sa.Column("removed", sa.Integer(), nullable=False, server_default="0"))


def downgrade():
    """Drop sync_jobs.removed."""
    with op.batch_alter_table("sync_jobs") as batch:
        batch.drop_column("removed")
