"""Records copied from Omnitron (addresses, channels; stores live in portal.stores) and the sync jobs."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db
from portal.runs.models import RunMixin


class AddressNode(db.Model):
    """A country, city, township or district from Omnitron's address tree, keyed by (level, Omnitron id)."""

    __tablename__ = "address_nodes"
    __table_args__ = (
        UniqueConstraint("level", "omnitron_id", name="uq_address_level_omnitron"),
        Index("ix_address_level_parent", "level", "parent_omnitron_id"),
    )

    COUNTRY = "country"
    CITY = "city"
    TOWNSHIP = "township"
    DISTRICT = "district"
    LEVELS = (COUNTRY, CITY, TOWNSHIP, DISTRICT)

    id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[str] = mapped_column(String(12))
    omnitron_id: Mapped[int] = mapped_column()
    parent_omnitron_id: Mapped[int | None] = mapped_column()
    name: Mapped[str] = mapped_column(String(160))
    code: Mapped[str] = mapped_column(String(40), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    remote_modified_at: Mapped[str] = mapped_column(String(40), default="")
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Channel(db.Model):
    """A sales channel (web, mobile app, marketplace) copied from Omnitron."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    omnitron_id: Mapped[int] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(120))
    channel_type: Mapped[str] = mapped_column(String(40), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    remote_modified_at: Mapped[str] = mapped_column(String(40), default="")
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SyncJob(RunMixin, db.Model):
    """One run of copying a kind of record from Omnitron, with its progress and summary.

    cursor: where to resume, the resource and page last committed (a killed job carries on from there).
    """

    __tablename__ = "sync_jobs"
    __table_args__ = (Index("ix_sync_jobs_kind_id", "kind", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # addresses | stock_locations | channels
    total: Mapped[int] = mapped_column(default=0)
    processed: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    # Records deactivated here because Omnitron no longer lists them (never deleted: packages point at them).
    removed: Mapped[int] = mapped_column(default=0, server_default="0")
