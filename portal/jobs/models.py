"""Brand-specific scheduled jobs (setup step 15) and their runs."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db
from portal.runs.models import RunMixin


class ScheduledJob(db.Model):
    """A job the brand wants run on a schedule (cron expression) with parameters."""

    __tablename__ = "scheduled_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    job_type: Mapped[str] = mapped_column(String(60))
    schedule: Mapped[str] = mapped_column(String(120))
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class JobRun(RunMixin, db.Model):
    """One run of a scheduled job: when, how it ended, and what it reported (result)."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_id", "job_id", "id"),)

    DONE = "succeeded"  # the runs' history has always said "succeeded"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("scheduled_jobs.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(20), default="schedule")  # schedule | manual
    result: Mapped[str] = mapped_column(Text, default="")
