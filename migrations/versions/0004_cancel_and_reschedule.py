"""Commands out of Needs Rescheduling, Out of Stock and Cancellation Waiting, so no state is a dead end.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WEB = ["OMS_WEB"]
# (slug, name, command_code, source, destination, visibility, position)
ROWS = [
    ("reschedule-package", "Reschedule Package", "RESCHEDULE_PACKAGE", 940, 100, WEB, 100),
    ("cancel-package-from-needs-rescheduling", "Cancel Package", "CANCEL_PACKAGE", 940, 960, WEB, 101),
    ("cancel-package-from-out-of-stock", "Cancel Package", "CANCEL_PACKAGE", 920, 960, WEB, 102),
    ("cancel-package-from-cancellation-waiting", "Cancel Package", "CANCEL_PACKAGE", 950, 960, WEB, 103),
]


def _table():
    """The columns of transitions this migration writes."""
    return sa.table(
        "transitions", sa.column("slug", sa.String), sa.column("name", sa.String),
        sa.column("command_code", sa.String), sa.column("source_state", sa.Integer),
        sa.column("destination_state", sa.Integer), sa.column("visibility", sa.JSON),
        sa.column("configuration", sa.JSON), sa.column("is_active", sa.Boolean), sa.column("position", sa.Integer))


def upgrade():
    """Add the commands, unless an admin already created one with the same slug."""
    conn = op.get_bind()
    existing = {row[0] for row in conn.execute(sa.text("SELECT slug FROM transitions"))}
    op.bulk_insert(_table(), [
        {"slug": slug, "name": name, "command_code": code, "source_state": src, "destination_state": dst,
         "visibility": vis, "configuration": {}, "is_active": True, "position": pos}
        for slug, name, code, src, dst, vis, pos in ROWS if slug not in existing
    ])


def downgrade():
    """Remove the commands this migration added."""
    op.execute(_table().delete().where(sa.column("slug").in_([r[0] for r in ROWS])))
