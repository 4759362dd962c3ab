"""The columns every background run has: its status, claim token, cursor, progress, error and timestamps."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db_types import UTCDateTime, utcnow


class RunMixin:
    """A run of some background work, resumable from its cursor and owned by one claim token at a time.

    status: QUEUED (recorded, waiting for a worker), RUNNING (a worker claimed it), DONE or FAILED.
    A kind may rename DONE for its history (scheduled job runs say "succeeded"). task_id is the claim
    token: every write of a running run is conditional on it, so a run taken over elsewhere stops.
    cursor is where to carry on; progress holds {"done": n, "total": m} for the status panel.
    """

    if TYPE_CHECKING:
        id: Mapped[int]  # each model declares its own primary key

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    status: Mapped[str] = mapped_column(String(12), default=QUEUED)
    task_id: Mapped[str] = mapped_column(String(64), default="")
    cursor: Mapped[dict] = mapped_column(JSON, default=dict)
    progress: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @classmethod
    def live_statuses(cls) -> tuple[str, str]:
        """The statuses of a run nothing has ended yet."""
        return (cls.QUEUED, cls.RUNNING)
