"""Remembered login devices: a store tablet where a user logged in checks their next password with a keyed HMAC.

Revision ID: 0024
Revises: 0023
"""
import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade():
    """Create login_devices."""
    op.create_table(
        "login_devices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_digest", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("verifier", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("device_digest", "user_id", name="uq_login_devices_device_user"),
    )
    op.create_index("ix_login_devices_user_id", "login_devices", ["user_id"])
    op.create_index("ix_login_devices_expires_at", "login_devices", ["expires_at"])


def downgrade():
    """Drop login_devices (every tablet then checks its next password with Argon2id again)."""
    op.drop_index("ix_login_devices_expires_at", table_name="login_devices")
    op.drop_index("ix_login_devices_user_id", table_name="login_devices")
    op.drop_table("login_devices")
