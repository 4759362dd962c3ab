"""Order import: packages remember their Omnitron order, and each import run is recorded.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    """Add packages.omnitron_order_id (unique, empty for packages made in the portal) and order_import_runs."""
    with op.batch_alter_table("packages") as batch:
        batch.add_column(sa.Column("omnitron_order_id", sa.Integer(), nullable=True))
        batch.create_index("ix_packages_omnitron_order_id", ["omnitron_order_id"], unique=True)
    op.create_table(
        "order_import_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("filter_key", sa.String(length=64), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=False),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("already_imported", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("skip_reasons", sa.JSON(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("started_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["started_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("order_import_runs") as batch:
        batch.create_index("ix_order_import_runs_status_id", ["status", "id"], unique=False)


def downgrade():
    """Drop order_import_runs and packages.omnitron_order_id."""
    op.drop_table("order_import_runs")
    with op.batch_alter_table("packages") as batch:
        batch.drop_index("ix_packages_omnitron_order_id")
        batch.drop_column("omnitron_order_id")
