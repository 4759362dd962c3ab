"""The state of each of the 15 setup steps, as recorded by the wizard."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db

if TYPE_CHECKING:
    # Resolved by name through the model registry at run time; imported here for the type checker only.
    from portal.accounts.models import User


class SetupStep(db.Model):
    """One step of the OMS basic setup: what state it is in and who completed it."""

    __tablename__ = "setup_steps"

    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    NEEDS_ATTENTION = "needs_attention"
    SKIPPED = "skipped"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    state: Mapped[str] = mapped_column(String(20), default=NOT_STARTED)
    note: Mapped[str] = mapped_column(Text, default="")
    skip_reason: Mapped[str] = mapped_column(Text, default="")
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    completed_by: Mapped[User | None] = relationship(lazy="joined")
