"""Fulfilment scenarios per channel (setup step 11)."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db

if TYPE_CHECKING:
    # Resolved by name through the model registry at run time; imported here for the type checker only.
    from portal.stores.models import StockLocation


class Scenario(db.Model):
    """Which stock locations may fulfil a channel's packages, and the rules that pick one."""

    __tablename__ = "scenarios"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    is_active: Mapped[bool] = mapped_column(default=True)
    rules: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    locations: Mapped[list[ScenarioLocation]] = relationship(
        back_populates="scenario", cascade="all, delete-orphan", order_by="ScenarioLocation.priority")


class ScenarioLocation(db.Model):
    """A stock location allowed in a scenario, with its priority (1 is tried first)."""

    __tablename__ = "scenario_locations"

    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id", ondelete="CASCADE"), primary_key=True)
    stock_location_id: Mapped[int] = mapped_column(ForeignKey("stock_locations.id", ondelete="CASCADE"),
                                                   primary_key=True)
    priority: Mapped[int] = mapped_column(default=1)

    scenario: Mapped[Scenario] = relationship(back_populates="locations")
    stock_location: Mapped[StockLocation] = relationship(lazy="joined")
