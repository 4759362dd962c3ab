"""Pickup shelf slots: the slots of a store, its shelf rules, and which package held which slot since when.

Revision ID: 0010
Revises: 0009 (the chain is fixed at merge)
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CURRENT = "released_at IS NULL"
CURRENT_EXCLUSIVE = "released_at IS NULL AND exclusive"


def upgrade():
    """Three tables; two partial unique indexes keep one current slot per package and one package per exclusive slot."""
    op.create_table(
        "shelf_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stock_location_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=40), nullable=False),
        sa.Column("barcode", sa.String(length=64), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["stock_location_id"], ["stock_locations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stock_location_id", "barcode", name="uq_shelf_slots_store_barcode"),
    )
    with op.batch_alter_table("shelf_slots") as batch:
        batch.create_index("ix_shelf_slots_stock_location_id", ["stock_location_id"], unique=False)
    op.create_table(
        "shelf_settings",
        sa.Column("stock_location_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("shared_slots_allowed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["stock_location_id"], ["stock_locations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("stock_location_id"),
    )
    op.create_table(
        "shelf_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("exclusive", sa.Boolean(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_by", sa.Integer(), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["package_id"], ["packages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["slot_id"], ["shelf_slots.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["assigned_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["released_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("shelf_assignments") as batch:
        batch.create_index("ix_shelf_assignments_package_id", ["package_id"], unique=False)
        batch.create_index("ix_shelf_assignments_slot_id", ["slot_id"], unique=False)
        batch.create_index("uq_shelf_assignments_current_package", ["package_id"], unique=True,
                           sqlite_where=sa.text(CURRENT), postgresql_where=sa.text(CURRENT))
        batch.create_index("uq_shelf_assignments_exclusive_slot", ["slot_id"], unique=True,
                           sqlite_where=sa.text(CURRENT_EXCLUSIVE), postgresql_where=sa.text(CURRENT_EXCLUSIVE))


def downgrade():
    """Drop the three tables."""
    with op.batch_alter_table("shelf_assignments") as batch:
        batch.drop_index("uq_shelf_assignments_exclusive_slot")
        batch.drop_index("uq_shelf_assignments_current_package")
        batch.drop_index("ix_shelf_assignments_slot_id")
        batch.drop_index("ix_shelf_assignments_package_id")
    op.drop_table("shelf_assignments")
    op.drop_table("shelf_settings")
    with op.batch_alter_table("shelf_slots") as batch:
        batch.drop_index("ix_shelf_slots_stock_location_id")
    op.drop_table("shelf_slots")
