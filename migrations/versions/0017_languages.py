"""Languages: a user's chosen language, a store's default language for its customers' SMS, an order's language.

Revision ID: 0017
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    """Add users.language (empty: follow the browser), stock_locations.language ("": CUSTOMER_LANGUAGE), packages.language."""
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=False, server_default=""))
    with op.batch_alter_table("stock_locations") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=False, server_default=""))
    with op.batch_alter_table("packages") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=False, server_default=""))


def downgrade():
    """Drop the three columns."""
    for table in ("packages", "stock_locations", "users"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("language")
