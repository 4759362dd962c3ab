"""The outbox's due index: undelivered rows by kind in due order, for the worker's batch claims and fan-outs.

Revision ID: 0022
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0015"
branch_labels = None
depends_on = None

UNDELIVERED = "status IN ('pending', 'failed', 'sending')"


def upgrade():
    """Index the undelivered outbox rows by kind and next_attempt_at."""
    with op.batch_alter_table("outbox_messages") as batch:
        batch.create_index("ix_outbox_due", ["kind", "next_attempt_at"], unique=False,
                           sqlite_where=sa.text(UNDELIVERED), postgresql_where=sa.text(UNDELIVERED))


def downgrade():
    """Drop the index."""
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_index("ix_outbox_due")
