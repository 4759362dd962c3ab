"""Manager override: whether a store lets managers hand packages over without the customer's code.

The override itself runs through the command endpoint (input_parameters.override of
self-service-package-delivery); this resource is the store's switch (brand managers and admins).
"""
from __future__ import annotations

from pydantic import Field

from portal.api.auth import caller
from portal.api.operations import Access, operation
from portal.api.schemas import Answer, Body
from portal.extensions import db
from portal.packages import override, pickup_settings


class OverrideSwitch(Answer):
    """Whether the store allows the manager override."""

    stock_location: int
    manager_override_allowed: bool = Field(description="False: the handover dialog hides the override and the "
                                                       "command refuses it.")


class NewOverrideSwitch(Body):
    """The store's new switch."""

    manager_override_allowed: bool


@operation("GET", "/oms/stock-locations/<int:store_id>/manager-override/", answer=OverrideSwitch, tag="packages",
           access=Access.MANAGERS, errors=("404",),
           summary="Whether a store allows handing packages over without a code (manager override).")
def get_override_switch(store_id: int):
    """The store's manager-override switch."""
    return OverrideSwitch(stock_location=store_id,
                          manager_override_allowed=override.store_allows(db.session, store_id))


@operation("PUT", "/oms/stock-locations/<int:store_id>/manager-override/", body=NewOverrideSwitch,
           answer=OverrideSwitch, tag="packages", access=Access.MANAGERS, errors=("404",),
           summary="Switch the manager override on or off for a store (brand managers and admins).",
           example={"manager_override_allowed": False})
def set_override_switch(store_id: int, body: NewOverrideSwitch):
    """Switch the store's manager override."""
    current, _changed = pickup_settings.save(db.session, store_id, user_id=caller().user_id,
                                             manager_override_allowed=body.manager_override_allowed)
    return OverrideSwitch(stock_location=store_id, manager_override_allowed=current.manager_override_allowed)
