"""Packages, their items and customers, the transitions (commands) between states and the audit log."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db
from portal.packages.states import DeliveryType, State, state_info
from portal.runs.models import RunMixin

if TYPE_CHECKING:  # only for the annotations; SQLAlchemy resolves the names through its registry
    from portal.accounts.models import User
    from portal.packages.shelf_models import ShelfAssignment
    from portal.stores.models import StockLocation


class Customer(db.Model):
    """The person who ordered; the pickup code goes to their phone."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    phone: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(160), default="")

    @property
    def full_name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}".strip()


class Package(db.Model):
    """A packaging order assigned to a stock location."""

    __tablename__ = "packages"
    __table_args__ = (
        # Keyset pagination: newest first, per store and status, per status, per store.
        Index("ix_packages_location_state_id", "stock_location_id", "state", "id"),
        Index("ix_packages_location_id", "stock_location_id", "id"),
        Index("ix_packages_state_id", "state", "id"),
        Index("ix_packages_delivery_type_id", "delivery_type", "id"),
        # The Problems tab's "Hold expired": ready packages whose pick-up-by time has passed.
        Index("ix_packages_state_hold_until", "state", "hold_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    order_number: Mapped[str] = mapped_column(String(40), index=True)
    stock_location_id: Mapped[int] = mapped_column(ForeignKey("stock_locations.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    state: Mapped[int] = mapped_column(default=State.WAITING.value)
    state_before_block: Mapped[int | None] = mapped_column()
    delivery_type: Mapped[str] = mapped_column(String(20), default=DeliveryType.CARGO)
    delivery_from_store: Mapped[bool] = mapped_column(default=False)
    item_count: Mapped[int] = mapped_column(default=0)
    denial_reason_id: Mapped[int | None] = mapped_column(ForeignKey("denial_reasons.id"))
    version: Mapped[int] = mapped_column(default=1)
    # The Omnitron order this package was imported from (portal.orders); None for packages made here.
    omnitron_order_id: Mapped[int | None] = mapped_column(index=True, unique=True)
    # The customer's language for SMS, from the order when Omnitron sends one; empty: the store's language.
    language: Mapped[str] = mapped_column(String(8), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The hold (portal.packages.hold): pick up by this time once ready; the reminder SMS and the expiry, once each.
    hold_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    hold_reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    hold_expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    stock_location: Mapped[StockLocation] = relationship(lazy="joined")
    customer: Mapped[Customer] = relationship(lazy="joined")
    items: Mapped[list[PackageItem]] = relationship(
        back_populates="package", order_by="PackageItem.id", cascade="all, delete-orphan"
    )
    logs: Mapped[list[PackageLog]] = relationship(
        back_populates="package", order_by="PackageLog.id.desc()", cascade="all, delete-orphan"
    )
    denial_reason: Mapped[DenialReason | None] = relationship()
    # The pickup shelf slot the package is on now (portal/packages/shelf.py); loaded only when read.
    current_shelf: Mapped[ShelfAssignment | None] = relationship(
        primaryjoin="and_(ShelfAssignment.package_id == Package.id, ShelfAssignment.released_at.is_(None))",
        viewonly=True, uselist=False)

    @property
    def shelf_location(self) -> str:
        """The label of the shelf slot the package waits on, or "" (the handover dialog shows it)."""
        return self.current_shelf.slot.label if self.current_shelf else ""

    @property
    def state_info(self):
        """Catalogue entry of the current state."""
        return state_info(self.state)

    @property
    def is_click_and_collect(self) -> bool:
        """Delivery type in_store with delivery from store: the customer collects it at the counter."""
        return self.delivery_type == DeliveryType.IN_STORE and self.delivery_from_store


class PackageItem(db.Model):
    """One order item in a package, with the barcode that must be scanned when packing."""

    __tablename__ = "package_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), index=True)
    order_item: Mapped[int] = mapped_column()
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(160))
    # Indexed: the scan box finds the open package that holds a scanned item.
    barcode: Mapped[str] = mapped_column(String(64), index=True)
    quantity: Mapped[int] = mapped_column(default=1)

    package: Mapped[Package] = relationship(back_populates="items")


class Transition(db.Model):
    """A package command: which state it starts from, where it goes, and the code that does its work."""

    __tablename__ = "transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    command_code: Mapped[str] = mapped_column(String(80), index=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    source_state: Mapped[int] = mapped_column(index=True)
    # None means "the state the package had before it was blocked" (unblock).
    destination_state: Mapped[int | None] = mapped_column()
    visibility: Mapped[list] = mapped_column(JSON, default=list)
    configuration: Mapped[dict] = mapped_column(JSON, default=dict)
    is_active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)


class DenialReason(db.Model):
    """Why a store refused a package (refuse-with-denial-reason command)."""

    __tablename__ = "denial_reasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(160))
    remote_id: Mapped[str] = mapped_column(String(64), default="")
    priority: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)


class PackageLog(db.Model):
    """Audit row: one for every transition, and for pickup-code events that leave the state as it is."""

    __tablename__ = "package_logs"

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[int] = mapped_column()
    to_state: Mapped[int] = mapped_column()
    transition_id: Mapped[int | None] = mapped_column(ForeignKey("transitions.id", ondelete="SET NULL"))
    command: Mapped[str] = mapped_column(String(120))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The manager who authorised the command on the user's tablet (a manager override), if any.
    authorised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    package: Mapped[Package] = relationship(back_populates="logs")
    user: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[user_id])
    authorised_by: Mapped[User | None] = relationship(foreign_keys=[authorised_by_id])


class PackingScan(db.Model):
    """How many units of one package line were ticked on the packing screen, by scan or by hand.

    One row per package line, created when the packing screen first opens; a scan is one conditional
    UPDATE of one row, so two tablets scanning the same package cannot tick more units than a line has.
    """

    __tablename__ = "packing_scans"

    package_item_id: Mapped[int] = mapped_column(
        ForeignKey("package_items.id", ondelete="CASCADE"), primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), index=True)
    scanned: Mapped[int] = mapped_column(default=0)
    by_hand: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HoldSweepRun(RunMixin, db.Model):
    """A run of the hold sweep: reminders before a hold ends, and the expiry after it (kind "hold_sweep").

    cursor {"after": package id} is where a resumed run carries on; the counters say what it did.
    """

    __tablename__ = "hold_sweep_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    checked: Mapped[int] = mapped_column(default=0)
    reminded: Mapped[int] = mapped_column(default=0)
    expired: Mapped[int] = mapped_column(default=0)
