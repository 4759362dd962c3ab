"""The hold of a package ready for pickup: extend it with a reason (any token; staff in their stores only)."""
from __future__ import annotations

from pydantic import Field

from portal.api.auth import caller
from portal.api.operations import Access, operation
from portal.api.schemas import Answer, Body, Timestamp
from portal.extensions import db
from portal.packages import hold


class HoldExtension(Body):
    """How many days to add to the hold, and why (the reason goes to the package's history)."""

    days: int = Field(ge=1, le=hold.MAX_EXTEND_DAYS, description="Days added to the pick-up-by date (from now "
                                                                 "when the hold has already ended).")
    reason: str = Field(min_length=1, max_length=500, description="Why the hold is extended.")


class PackageHold(Answer):
    """A package's hold after the change."""

    id: int
    hold_until: Timestamp | None = Field(description="The new pick-up-by time.")
    version: int


@operation("POST", "/oms/packages/<int:package_id>/hold/extend/", body=HoldExtension, answer=PackageHold,
           access=Access.ANY, errors=("404", "409", "422"), tag="packages", is_idempotent=True,
           summary="Extend the hold of a package ready for pickup, with a reason.",
           example={"days": 3, "reason": "The customer is travelling and asked for a few more days."},
           description="The package must be Ready for Customer Pickup. Its pickup code lasts as long; the "
                       "reminder SMS may go again before the new end. The extension is written to the history.")
def extend_hold(package_id: int, body: HoldExtension):
    """Extend a ready package's hold by body.days days, with a reason."""
    current = caller()
    package = hold.extend_hold(db.session, package_id, days=body.days, reason=body.reason,
                               user_id=current.user_id, store_ids=current.store_ids)
    return PackageHold(id=package.id, hold_until=package.hold_until, version=package.version)
