"""Stock locations (stores and warehouses) where packages are prepared."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Numeric, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db


class StockLocation(db.Model):
    """A store or warehouse; staff belong to one or more of these."""

    __tablename__ = "stock_locations"

    id: Mapped[int] = mapped_column(primary_key=True)
    omnitron_id: Mapped[int | None] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(120))
    erp_code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="store")
    city: Mapped[str] = mapped_column(String(80), default="")
    address: Mapped[str] = mapped_column(String(255), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Istanbul")
    # The language its customers' SMS are written in when their order names none ("" : CUSTOMER_LANGUAGE); the
    # demo's Istanbul stores say "tr". See portal.i18n.sms_locale.
    language: Mapped[str] = mapped_column(String(8), default="", server_default="")
    latitude: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    longitude: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    max_quota: Mapped[int] = mapped_column(default=0)
    quota: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)
    # Whether a manager may hand a package over without the customer's code here (issue 9).
    manager_override_allowed: Mapped[bool] = mapped_column(default=True, server_default=true())
    # How many days a ready package waits for its customer here (None: OTP_HOLD_DAYS); see portal.packages.hold.
    hold_days: Mapped[int | None] = mapped_column()
    # Opening hours as the customer page shows them: free text, one line per row ("Mon-Sat 10:00-22:00").
    opening_hours: Mapped[str] = mapped_column(Text, default="", server_default="")
    remote_modified_at: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def available_quota(self) -> int:
        """max_quota - quota, never below zero."""
        return max(self.max_quota - self.quota, 0)
