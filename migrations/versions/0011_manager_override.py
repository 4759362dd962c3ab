"""Manager override: a per-store switch, and the manager who authorised a command on its audit row.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    """Stores allow the override by default; audit rows may name the authorising manager."""
    with op.batch_alter_table("stock_locations") as batch:
        batch.add_column(sa.Column("manager_override_allowed", sa.Boolean(), nullable=False,
                                   server_default=sa.true()))
    with op.batch_alter_table("package_logs") as batch:
        batch.add_column(sa.Column("authorised_by_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_package_logs_authorised_by_id_users", "users", ["authorised_by_id"], ["id"],
                                 ondelete="SET NULL")


def downgrade():
    """Drop both columns."""
    with op.batch_alter_table("package_logs") as batch:
        batch.drop_constraint("fk_package_logs_authorised_by_id_users", type_="foreignkey")
        batch.drop_column("authorised_by_id")
    with op.batch_alter_table("stock_locations") as batch:
        batch.drop_column("manager_override_allowed")
