"""Cargo shipments: the one shipment of a package, made at the cargo company by a background step, and the
tracking runs that follow shipments and move their packages along."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db
from portal.runs.models import RunMixin

if TYPE_CHECKING:  # only for the annotations; SQLAlchemy resolves the names through its registry
    from portal.cargo.models import CargoCompany


class Shipment(db.Model):
    """A package's shipment with its cargo company.

    status: PENDING (recorded with the command, waiting for a worker), CREATING (a worker is asking the cargo
    company; lease_until ends its claim), CREATED (tracking number and label received) or FAILED (the last
    try failed: last_error says why; tried again at next_attempt_at, or only by a person's Retry when
    next_attempt_at is empty). tracking_status is what the cargo company last reported (created, in_transit,
    attempted_delivery, delivered, delivery_failed). key is what the cargo company knows the shipment by, so
    asking twice makes one shipment.
    """

    __tablename__ = "shipments"
    __table_args__ = (
        # The worker's "due" query and the tracking run's walk over live shipments.
        Index("ix_shipments_status_next_attempt", "status", "next_attempt_at"),
        Index("ix_shipments_status_tracking", "status", "tracking_status", "id"),
    )

    PENDING = "pending"
    CREATING = "creating"
    CREATED = "created"
    FAILED = "failed"

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), unique=True)
    cargo_company_id: Mapped[int | None] = mapped_column(ForeignKey("cargo_companies.id", ondelete="SET NULL"))
    key: Mapped[str] = mapped_column(String(120), unique=True)
    status: Mapped[str] = mapped_column(String(12), default=PENDING)
    tracking_number: Mapped[str] = mapped_column(String(64), default="", index=True)
    tracking_status: Mapped[str] = mapped_column(String(32), default="")
    label: Mapped[bytes | None] = deferred(mapped_column(LargeBinary()))
    label_type: Mapped[str] = mapped_column(String(40), default="")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    tracked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    cargo_company: Mapped[CargoCompany | None] = relationship(lazy="joined")


class ShipmentTrackingRun(RunMixin, db.Model):
    """A run of the tracking poll (kind "shipment_tracking"): retries due shipments, then asks the cargo
    companies where the live shipments are and moves their packages through the command door.

    cursor {"after": shipment id} is where a resumed run carries on; the counters say what it did.
    """

    __tablename__ = "shipment_tracking_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_shipments: Mapped[int] = mapped_column(default=0)
    checked: Mapped[int] = mapped_column(default=0)
    moved: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)
