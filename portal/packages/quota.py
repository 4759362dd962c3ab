"""Stock location quota, the vendor's rule: quota counts the packages a location still has to work on.

A package counts while its state is below 400 (Waiting .. Ready for Packaging: planned, not packed yet)
or Cancellation Waiting. So planning a package there raises the quota by one, and packing, cancelling or
refusing it lowers it by one (rescheduling brings it back). available_quota = max_quota - quota; a
scenario with SELECT_BY_QUOTA plans nothing where it is 0. Every change is one atomic UPDATE in the
caller's transaction, so two tablets packing in the same store never lose a count.
"""
from __future__ import annotations

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session

from portal.db_types import rowcount
from portal.packages.models import Package
from portal.packages.states import State
from portal.stores.models import StockLocation

# Below this code a package is not packed yet (states.py keeps the vendor's numbering for this).
PACKED_FROM = 400


def counts(state: int | None) -> bool:
    """Whether a package in this state takes up its location's quota."""
    return state is not None and (state < PACKED_FROM or state == State.CANCELLATION_WAITING)


def change_for(from_state: int | None, to_state: int | None) -> int:
    """The quota change of a package moving between two states: +1, -1 or 0."""
    return int(counts(to_state)) - int(counts(from_state))


def adjust(session: Session, location_id: int | None, delta: int) -> None:
    """Add delta to a location's quota (never below zero) in the caller's transaction; not committed."""
    if not delta or location_id is None:
        return
    raised = StockLocation.quota + delta
    session.execute(
        update(StockLocation).where(StockLocation.id == location_id)
        .values(quota=case((raised < 0, 0), else_=raised))
        .execution_options(synchronize_session=False))


def counted_condition():
    """SQL condition: the package takes up quota (see counts)."""
    return or_(Package.state < PACKED_FROM, Package.state == State.CANCELLATION_WAITING)


def recount(session: Session) -> int:
    """Set every location's quota to the number of its packages that count; returns how many changed. Not committed.

    For data that did not come through the command engine (an import in bulk, the demo seed) or a
    quota someone edited by hand.
    """
    counted = (select(func.count(Package.id))
               .where(Package.stock_location_id == StockLocation.id, counted_condition())
               .scalar_subquery())
    return rowcount(session.execute(
        update(StockLocation).where(StockLocation.quota != counted).values(quota=counted)
        .execution_options(synchronize_session=False)))
