"""Delegates: someone the customer sends to collect a package ready for pickup, with a pickup code of their own."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db

_ACTIVE = "status = 'active'"


class PackageDelegate(db.Model):
    """A person named to collect a package instead of its customer, and what became of the naming.

    At most one delegate of a package is active (the partial unique index holds on both databases); naming
    another replaces it. The delegate's pickup code is a PickupCode row with delegate_id set to this row.
    """

    __tablename__ = "package_delegates"
    __table_args__ = (
        Index("uq_package_delegates_active_package", "package_id", unique=True,
              sqlite_where=text(_ACTIVE), postgresql_where=text(_ACTIVE)),
        Index("ix_package_delegates_package_id", "package_id"),
    )

    ACTIVE = "active"
    REPLACED = "replaced"  # another delegate was named
    REMOVED = "removed"  # the customer or staff took the naming back
    COLLECTED = "collected"  # the delegate collected the package with their code
    ENDED = "ended"  # the package left the counter some other way (the customer collected it, the hold ended…)

    STAFF = "staff"
    CUSTOMER = "customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(12), default=ACTIVE)
    source: Mapped[str] = mapped_column(String(12), default=STAFF)
    named_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
