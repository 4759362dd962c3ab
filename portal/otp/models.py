"""Pickup codes (stored only as keyed hashes) and the record of every code check."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db


class PickupCode(db.Model):
    """A one-time code for handing a click & collect package to its customer."""

    __tablename__ = "pickup_codes"
    __table_args__ = (Index("ix_pickup_codes_package_status", "package_id", "status"),)

    ACTIVE = "active"
    USED = "used"
    LOCKED = "locked"
    REPLACED = "replaced"

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"))
    # None: the customer's code; otherwise the code of that delegate (portal/packages/delegate.py).
    delegate_id: Mapped[int | None] = mapped_column(ForeignKey("package_delegates.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default=ACTIVE)
    failed_attempts: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OtpAttempt(db.Model):
    """One check of a pickup code by a user; wrong ones count towards the per-user limit."""

    __tablename__ = "otp_attempts"
    __table_args__ = (Index("ix_otp_attempts_user_time", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), index=True)
    success: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
