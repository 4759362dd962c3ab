"""Cargo shipments: a package's shipment with its cargo company, the tracking runs, and the shipment-status
commands out of Shipped and Attempted Delivery (the vendor's update shipment status command).

Revision ID: 0016
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0013"
branch_labels = None
depends_on = None

WEB = ["OMS_WEB"]
# (slug, name, command_code, source, destination, visibility, position): Shipped 600, Attempted Delivery 650,
# Delivery Failed 700. Delivered from each of them came with the vendor's flow (0001).
ROWS = [
    ("update-shipment-status-shipped-to-attempted-delivery", "Update The Package's Shipment Status",
     "UPDATE_SHIPMENT_STATUS", 600, 650, WEB, 120),
    ("update-shipment-status-shipped-to-delivery-failed", "Update The Package's Shipment Status",
     "UPDATE_SHIPMENT_STATUS", 600, 700, WEB, 121),
    ("update-shipment-status-attempted-delivery-to-delivery-failed", "Update The Package's Shipment Status",
     "UPDATE_SHIPMENT_STATUS", 650, 700, WEB, 122),
]


def _transitions():
    """The columns of transitions this migration writes."""
    return sa.table(
        "transitions", sa.column("slug", sa.String), sa.column("name", sa.String),
        sa.column("command_code", sa.String), sa.column("source_state", sa.Integer),
        sa.column("destination_state", sa.Integer), sa.column("visibility", sa.JSON),
        sa.column("configuration", sa.JSON), sa.column("is_active", sa.Boolean), sa.column("position", sa.Integer))


def _run_columns():
    """The columns every background run has (portal.runs.models.RunMixin)."""
    return [
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("started_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["started_by_id"], ["users.id"], ondelete="SET NULL"),
    ]


def upgrade():
    """The shipments and shipment_tracking_runs tables, and the three commands (unless an admin made them)."""
    op.create_table(
        "shipments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("cargo_company_id", sa.Integer(), nullable=True),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("tracking_number", sa.String(length=64), nullable=False),
        sa.Column("tracking_status", sa.String(length=32), nullable=False),
        sa.Column("label", sa.LargeBinary(), nullable=True),
        sa.Column("label_type", sa.String(length=40), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tracked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["package_id"], ["packages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["cargo_company_id"], ["cargo_companies.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("package_id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("shipments") as batch:
        batch.create_index("ix_shipments_tracking_number", ["tracking_number"], unique=False)
        batch.create_index("ix_shipments_status_next_attempt", ["status", "next_attempt_at"], unique=False)
        batch.create_index("ix_shipments_status_tracking", ["status", "tracking_status", "id"], unique=False)
    op.create_table(
        "shipment_tracking_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_shipments", sa.Integer(), nullable=False),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("moved", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        *_run_columns(),
        sa.PrimaryKeyConstraint("id"),
    )
    conn = op.get_bind()
    existing = {row[0] for row in conn.execute(sa.text("SELECT slug FROM transitions"))}
    op.bulk_insert(_transitions(), [
        {"slug": slug, "name": name, "command_code": code, "source_state": src, "destination_state": dst,
         "visibility": vis, "configuration": {}, "is_active": True, "position": pos}
        for slug, name, code, src, dst, vis, pos in ROWS if slug not in existing
    ])


def downgrade():
    """Remove the commands and drop the tables."""
    op.execute(_transitions().delete().where(sa.column("slug").in_([r[0] for r in ROWS])))
    op.drop_table("shipment_tracking_runs")
    with op.batch_alter_table("shipments") as batch:
        batch.drop_index("ix_shipments_status_tracking")
        batch.drop_index("ix_shipments_status_next_attempt")
        batch.drop_index("ix_shipments_tracking_number")
    op.drop_table("shipments")
