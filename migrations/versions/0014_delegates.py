"""Delegate collectors: the people customers send to collect a package, and pickup codes bound to them.

Revision ID: 0014
Revises: 0012 (the chain is fixed at merge)
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0016"
branch_labels = None
depends_on = None

ACTIVE = "status = 'active'"


def upgrade():
    """The package_delegates table (one active row per package) and pickup_codes.delegate_id."""
    op.create_table(
        "package_delegates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("named_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["package_id"], ["packages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["named_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("package_delegates") as batch:
        batch.create_index("ix_package_delegates_package_id", ["package_id"], unique=False)
        batch.create_index("uq_package_delegates_active_package", ["package_id"], unique=True,
                           sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))
    with op.batch_alter_table("pickup_codes") as batch:
        batch.add_column(sa.Column("delegate_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_pickup_codes_delegate_id_package_delegates", "package_delegates",
                                 ["delegate_id"], ["id"], ondelete="CASCADE")


def downgrade():
    """Drop the column (delegates' codes first: without the column they would pass for the customer's) and the
    table."""
    op.execute("DELETE FROM pickup_codes WHERE delegate_id IS NOT NULL")
    with op.batch_alter_table("pickup_codes") as batch:
        batch.drop_constraint("fk_pickup_codes_delegate_id_package_delegates", type_="foreignkey")
        batch.drop_column("delegate_id")
    with op.batch_alter_table("package_delegates") as batch:
        batch.drop_index("uq_package_delegates_active_package")
        batch.drop_index("ix_package_delegates_package_id")
    op.drop_table("package_delegates")
