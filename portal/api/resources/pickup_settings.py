"""A store's pickup settings (issue 9): its hold days, and all of them together (hold days, manager override,
shared shelf slots, opening hours), as the store's pickup settings page sets them. Brand managers and admins;
every changed field is audited (portal.packages.pickup_settings)."""
from __future__ import annotations

from pydantic import Field

from portal.api.auth import caller
from portal.api.operations import Access, operation
from portal.api.schemas import Answer, Body
from portal.extensions import db
from portal.packages import customer_link, hold, pickup_settings


class HoldDays(Answer):
    """How long a ready package waits for its customer at a store."""

    stock_location: int
    hold_days: int | None = Field(description="The store's own hold length in days; null: the default.")
    default_hold_days: int = Field(description="The portal's default (OTP_HOLD_DAYS).")
    effective_hold_days: int = Field(description="What packages made ready at this store get now.")


class NewHoldDays(Body):
    """The store's new hold length (null: back to the default)."""

    hold_days: int | None = Field(ge=1, le=hold.MAX_HOLD_DAYS)


def _hold_days(current: pickup_settings.PickupSettings) -> HoldDays:
    """The answer of a store's settings."""
    return HoldDays(stock_location=current.store_id, hold_days=current.hold_days,
                    default_hold_days=current.default_hold_days, effective_hold_days=current.effective_hold_days)


@operation("GET", "/oms/stock-locations/<int:store_id>/hold-days/", answer=HoldDays, tag="packages",
           access=Access.MANAGERS, errors=("404",), summary="How long a ready package waits for pickup at a store.")
def get_hold_days(store_id: int):
    """The store's hold days."""
    return _hold_days(pickup_settings.read(db.session, store_id, caller().store_ids))


@operation("PUT", "/oms/stock-locations/<int:store_id>/hold-days/", body=NewHoldDays, answer=HoldDays,
           tag="packages", access=Access.MANAGERS, errors=("404",),
           summary="Set how long a ready package waits for pickup at a store (brand managers and admins).",
           description="Applies to packages made ready from then on; null goes back to the default.",
           example={"hold_days": 10})
def set_hold_days(store_id: int, body: NewHoldDays):
    """Set the store's hold days."""
    current, _changed = pickup_settings.save(db.session, store_id, user_id=caller().user_id,
                                             store_ids=caller().store_ids, hold_days=body.hold_days)
    return _hold_days(current)


class StorePickupSettings(Answer):
    """A store's pickup settings."""

    stock_location: int
    hold_days: int | None = Field(description="The store's own hold length in days; null: the default.")
    effective_hold_days: int
    manager_override_allowed: bool
    shared_slots: bool = Field(description="Whether a shelf slot may hold several packages.")
    opening_hours: list[str]


class PickupSettingsChange(Body):
    """The settings to change; the ones left out stay as they are."""

    hold_days: int | None = Field(default=None, ge=1, le=hold.MAX_HOLD_DAYS)
    manager_override_allowed: bool | None = None
    shared_slots: bool | None = None
    opening_hours: list[str] | None = Field(default=None, max_length=customer_link.MAX_HOURS_LINES)


def _settings(current: pickup_settings.PickupSettings) -> StorePickupSettings:
    """The answer of a store's settings."""
    return StorePickupSettings(stock_location=current.store_id, hold_days=current.hold_days,
                               effective_hold_days=current.effective_hold_days,
                               manager_override_allowed=current.manager_override_allowed,
                               shared_slots=current.shared_slots, opening_hours=current.opening_hours)


@operation("GET", "/oms/stock-locations/<int:store_id>/pickup-settings/", answer=StorePickupSettings,
           tag="packages", access=Access.MANAGERS, errors=("404",), summary="A store's pickup settings.")
def get_pickup_settings(store_id: int):
    """The store's pickup settings."""
    return _settings(pickup_settings.read(db.session, store_id, caller().store_ids))


@operation("PATCH", "/oms/stock-locations/<int:store_id>/pickup-settings/", body=PickupSettingsChange,
           answer=StorePickupSettings, tag="packages", access=Access.MANAGERS, errors=("404",),
           summary="Change some of a store's pickup settings (brand managers and admins).",
           description="Fields left out stay as they are; hold_days null (given) goes back to the default. "
                       "Every bad field is named and nothing is written.",
           example={"hold_days": 10, "shared_slots": False})
def change_pickup_settings(store_id: int, body: PickupSettingsChange):
    """Change the store's pickup settings."""
    given = body.model_fields_set
    changes: dict[str, object] = {name: getattr(body, name) for name in pickup_settings.FIELDS if name in given}
    for name in ("manager_override_allowed", "shared_slots", "opening_hours"):
        if name in changes and changes[name] is None:
            changes.pop(name)
    current, _changed = pickup_settings.save(db.session, store_id, user_id=caller().user_id,
                                             store_ids=caller().store_ids, **changes)
    return _settings(current)
