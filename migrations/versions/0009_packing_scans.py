"""Packing in any order: how many units of each package line were ticked, by scan or by hand.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    """One row per package line, keyed by the line."""
    op.create_table(
        "packing_scans",
        sa.Column("package_item_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("scanned", sa.Integer(), nullable=False),
        sa.Column("by_hand", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["package_item_id"], ["package_items.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["package_id"], ["packages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("package_item_id"),
    )
    with op.batch_alter_table("packing_scans") as batch:
        batch.create_index("ix_packing_scans_package_id", ["package_id"], unique=False)


def downgrade():
    """Drop the table."""
    with op.batch_alter_table("packing_scans") as batch:
        batch.drop_index("ix_packing_scans_package_id")
    op.drop_table("packing_scans")
