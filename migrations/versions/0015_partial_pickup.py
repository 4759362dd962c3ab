"""Partial pickup: the lines of a handover where the customer refused items, and Package Packed for Refund at
the counter (Ready for Customer Pickup -> Packed for Refund).

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# (slug, name, command_code, source, destination, visibility, position): the vendor's command, from the counter;
# position 7, next to the delivery (the same source state), so the commands of the counter list together.
ROWS = [
    ("package-packed-for-refund-at-pickup", "Package Packed for Refund", "PACKAGE_PACKED_FOR_REFUND", 550, 1100,
     ["OMS_WEB"], 7),
]


def _transitions():
    """The columns of transitions this migration writes."""
    return sa.table(
        "transitions", sa.column("slug", sa.String), sa.column("name", sa.String),
        sa.column("command_code", sa.String), sa.column("source_state", sa.Integer),
        sa.column("destination_state", sa.Integer), sa.column("visibility", sa.JSON),
        sa.column("configuration", sa.JSON), sa.column("is_active", sa.Boolean), sa.column("position", sa.Integer))


def upgrade():
    """Create handover_lines and add the command, unless an admin already made one with the same slug."""
    op.create_table(
        "handover_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("order_item", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=160), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("refund_package_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["package_id"], ["packages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["refund_package_id"], ["packages.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("package_id", "order_item", name="uq_handover_lines_package_order_item"),
    )
    op.create_index("ix_handover_lines_package_id", "handover_lines", ["package_id"], unique=False)
    op.create_index("ix_handover_lines_refund_package_id", "handover_lines", ["refund_package_id"], unique=False)
    conn = op.get_bind()
    existing = {row[0] for row in conn.execute(sa.text("SELECT slug FROM transitions"))}
    op.bulk_insert(_transitions(), [
        {"slug": slug, "name": name, "command_code": code, "source_state": src, "destination_state": dst,
         "visibility": vis, "configuration": {}, "is_active": True, "position": pos}
        for slug, name, code, src, dst, vis, pos in ROWS if slug not in existing
    ])


def downgrade():
    """Remove the command and the table."""
    op.execute(_transitions().delete().where(sa.column("slug").in_([r[0] for r in ROWS])))
    op.drop_index("ix_handover_lines_refund_package_id", table_name="handover_lines")
    op.drop_index("ix_handover_lines_package_id", table_name="handover_lines")
    op.drop_table("handover_lines")
