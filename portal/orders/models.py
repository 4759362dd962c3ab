"""Runs of the order import: progress, summary and where the next run starts."""
from __future__ import annotations

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.runs.models import RunMixin


class OrderImportRun(RunMixin, db.Model):
    """One fetch of orders from Omnitron, with its counts and the cursor it got to.

    cursor: {"modified": newest modified_date committed, "ids": Omnitron ids at that moment already handled}.
    """

    __tablename__ = "order_import_runs"
    __table_args__ = (Index("ix_order_import_runs_status_id", "status", "id"),)

    ACTIVE = (RunMixin.QUEUED, RunMixin.RUNNING)

    id: Mapped[int] = mapped_column(primary_key=True)
    trigger: Mapped[str] = mapped_column(String(20), default="manual")  # manual | job | cli
    full: Mapped[bool] = mapped_column(default=False)  # read again from the start date, ignoring the cursor
    # A digest of the ORDER_FILTERING fields that choose orders: the cursor only holds for the same filter.
    filter_key: Mapped[str] = mapped_column(String(64), default="")
    fetched: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    already_imported: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    skip_reasons: Mapped[dict] = mapped_column(JSON, default=dict)  # reason code -> count
    problems: Mapped[list] = mapped_column(JSON, default=list)  # a few "order 123: why" lines
