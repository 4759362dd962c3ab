"""Pickup shelf slots: where a package ready for pickup waits, and which slot held which package since when."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db

if TYPE_CHECKING:  # only for the annotations; SQLAlchemy resolves the names through its registry
    from portal.accounts.models import User
    from portal.packages.models import Package

# A current assignment is one not yet released; the two partial unique indexes below hold on both databases.
_CURRENT = "released_at IS NULL"
_CURRENT_EXCLUSIVE = "released_at IS NULL AND exclusive"


class ShelfSlot(db.Model):
    """A place on a store's pickup shelf: a label staff read and a barcode they scan."""

    __tablename__ = "shelf_slots"
    __table_args__ = (UniqueConstraint("stock_location_id", "barcode", name="uq_shelf_slots_store_barcode"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    stock_location_id: Mapped[int] = mapped_column(ForeignKey("stock_locations.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(40))
    barcode: Mapped[str] = mapped_column(String(64))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ShelfSettings(db.Model):
    """A store's shelf rules; a store without a row shares no slots."""

    __tablename__ = "shelf_settings"

    stock_location_id: Mapped[int] = mapped_column(
        ForeignKey("stock_locations.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    shared_slots_allowed: Mapped[bool] = mapped_column(default=False)


class ShelfAssignment(db.Model):
    """A package on a slot from assigned_at until released_at (None while it is there): the shelf's history.

    exclusive is true when the store did not allow shared slots at the time; the partial unique index on
    slot_id over current exclusive rows lets the database refuse a second package on one slot even when two
    tablets assign at the same instant. A package has at most one current row.
    """

    __tablename__ = "shelf_assignments"
    __table_args__ = (
        Index("uq_shelf_assignments_current_package", "package_id", unique=True,
              sqlite_where=text(_CURRENT), postgresql_where=text(_CURRENT)),
        Index("uq_shelf_assignments_exclusive_slot", "slot_id", unique=True,
              sqlite_where=text(_CURRENT_EXCLUSIVE), postgresql_where=text(_CURRENT_EXCLUSIVE)),
        Index("ix_shelf_assignments_slot_id", "slot_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), index=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("shelf_slots.id", ondelete="CASCADE"))
    exclusive: Mapped[bool] = mapped_column(default=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    assigned_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    released_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    slot: Mapped[ShelfSlot] = relationship(lazy="joined")
    package: Mapped[Package] = relationship()
    user: Mapped[User | None] = relationship(foreign_keys=[assigned_by])
