"""An index on package_items.barcode: the store floor's scan box finds the open package holding a scanned item.

Revision ID: 0008
Revises: 0007
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    """Index item barcodes."""
    op.create_index("ix_package_items_barcode", "package_items", ["barcode"])


def downgrade():
    """Drop the barcode index."""
    op.drop_index("ix_package_items_barcode", table_name="package_items")
