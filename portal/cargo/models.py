"""Cargo companies (setup step 14)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db


class CargoCompany(db.Model):
    """A cargo company: managed by the OMS or not, a demo client or a real integration with credentials."""

    __tablename__ = "cargo_companies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    erp_code: Mapped[str] = mapped_column(String(64), unique=True)
    is_managed_by_oms: Mapped[bool] = mapped_column(default=True)
    is_demo_client: Mapped[bool] = mapped_column(default=False)
    shipping_company: Mapped[str] = mapped_column(String(60))
    # The conf object (credentials or demo client class), encrypted as one JSON document.
    conf_encrypted: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
