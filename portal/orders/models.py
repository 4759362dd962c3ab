"""Runs of the order import: progress, summary and where the next run starts."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db


class OrderImportRun(db.Model):
    """One fetch of orders from Omnitron, with its counts and the cursor it got to."""

    __tablename__ = "order_import_runs"
    __table_args__ = (Index("ix_order_import_runs_status_id", "status", "id"),)

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    ACTIVE = (QUEUED, RUNNING)

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(12), default=QUEUED)
    trigger: Mapped[str] = mapped_column(String(20), default="manual")  # manual | job | cli
    full: Mapped[bool] = mapped_column(default=False)  # read again from the start date, ignoring the cursor
    # The claim token of the task running it: a second delivery of the task finds it taken.
    task_id: Mapped[str] = mapped_column(String(64), default="")
    # A digest of the ORDER_FILTERING fields that choose orders: the cursor only holds for the same filter.
    filter_key: Mapped[str] = mapped_column(String(64), default="")
    # {"modified": newest modified_date committed, "ids": Omnitron ids at that moment already handled}.
    cursor: Mapped[dict] = mapped_column(JSON, default=dict)
    fetched: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    already_imported: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    skip_reasons: Mapped[dict] = mapped_column(JSON, default=dict)  # reason code -> count
    problems: Mapped[list] = mapped_column(JSON, default=list)  # a few "order 123: why" lines
    error: Mapped[str] = mapped_column(Text, default="")
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
