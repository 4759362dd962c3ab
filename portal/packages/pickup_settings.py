"""A store's pickup settings in one place (issue 9): how long a ready package waits (hold days), whether managers
may hand over without the code (manager override), whether slots may hold several packages (shared slots), and
the opening hours the customer page shows.

Each value has its own owner (portal.packages.hold, override, shelf, customer_link); this module reads them
together, checks a whole change before it writes anything (every field's message at once), writes only what
changed in one transaction, and audits each changed field as a SettingChange (area "pickup_settings", key
"store:<id>:<field>", who and when, never the value), as the settings and credentials are audited. Managers only:
the blueprint and the API check the role. A new hold length applies to packages made ready from then on.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from portal.db_types import plain_int
from portal.errors import NotFound, ValidationFailed
from portal.packages import customer_link, hold
from portal.packages.shelf_models import ShelfSettings
from portal.settings import service as settings
from portal.stores.models import StockLocation

AREA = "pickup_settings"
FIELDS = ("hold_days", "manager_override_allowed", "shared_slots", "opening_hours")


@dataclass(frozen=True)
class PickupSettings:
    """A store's pickup settings as the page and the API show them."""

    store_id: int
    store_name: str
    hold_days: int | None  # None: the default
    default_hold_days: int
    manager_override_allowed: bool
    shared_slots: bool
    opening_hours: list[str]

    @property
    def effective_hold_days(self) -> int:
        """The hold length packages get at this store now."""
        return self.hold_days or self.default_hold_days


def default_hold_days() -> int:
    """The hold length of a store without its own (OTP_HOLD_DAYS)."""
    return int(current_app.config["OTP_HOLD_DAYS"])


def _store(session: Session, store_id: int, store_ids: list[int] | None) -> StockLocation:
    """The stock location, or NotFound (also for one outside store_ids; None: every store)."""
    store = session.get(StockLocation, store_id)
    if store is None or (store_ids is not None and store_id not in store_ids):
        raise NotFound(_("Stock location not found."))
    return store


def read(session: Session, store_id: int, store_ids: list[int] | None = None) -> PickupSettings:
    """The store's pickup settings. Raises NotFound."""
    store = _store(session, store_id, store_ids)
    shelf_row = session.get(ShelfSettings, store.id)
    return PickupSettings(store_id=store.id, store_name=store.name, hold_days=store.hold_days or None,
                          default_hold_days=default_hold_days(),
                          manager_override_allowed=bool(store.manager_override_allowed),
                          shared_slots=bool(shelf_row and shelf_row.shared_slots_allowed),
                          opening_hours=customer_link.hours_lines(store.opening_hours))


def clean_hold_days(raw: object) -> int | None:
    """Hold days as stored: None (blank: the default) or a whole number from 1 to hold.MAX_HOLD_DAYS.
    Raises ValidationFailed."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    days = None if isinstance(raw, bool) else plain_int(raw)
    if days is None or not 1 <= days <= hold.MAX_HOLD_DAYS:
        raise ValidationFailed(_("Enter a whole number of days from 1 to %(maximum)s, or leave it empty for the "
                                 "default.", maximum=hold.MAX_HOLD_DAYS), field="hold_days")
    return days


def _lines(raw: object) -> list[str]:
    """Opening hours typed in a text area (one line per row) or given as a list."""
    if isinstance(raw, list | tuple):
        return [str(line) for line in raw]
    return str(raw or "").splitlines()


def save(session: Session, store_id: int, *, user_id: int | None, store_ids: list[int] | None = None,
         hold_days: object = ..., manager_override_allowed: object = ..., shared_slots: object = ...,
         opening_hours: object = ...) -> tuple[PickupSettings, list[str]]:
    """Change some of a store's pickup settings (a field left out stays as it is); the new settings and the
    fields that changed. Commits, with one audit row per changed field.

    Raises NotFound, or ValidationFailed with details["errors"] (field -> message) for every bad field; then
    nothing is written.
    """
    store = _store(session, store_id, store_ids)
    errors: dict[str, str] = {}
    new: dict[str, object] = {}
    if hold_days is not ...:
        try:
            new["hold_days"] = clean_hold_days(hold_days)
        except ValidationFailed as exc:
            errors["hold_days"] = exc.message
    if opening_hours is not ...:
        try:
            new["opening_hours"] = customer_link.clean_opening_hours(_lines(opening_hours))
        except ValidationFailed as exc:
            errors["opening_hours"] = exc.message
    for name, value in (("manager_override_allowed", manager_override_allowed), ("shared_slots", shared_slots)):
        if value is ...:
            continue
        if not isinstance(value, bool):
            errors[name] = _("Choose on or off.")
        else:
            new[name] = value
    if errors:
        first = next(iter(errors))
        raise ValidationFailed(errors[first], field=first, details={"errors": errors})
    before = read(session, store.id)
    changed = [name for name in FIELDS if name in new and new[name] != getattr(before, name)]
    if "hold_days" in changed:
        store.hold_days = new["hold_days"]  # type: ignore[assignment]
    if "manager_override_allowed" in changed:
        store.manager_override_allowed = bool(new["manager_override_allowed"])
    if "opening_hours" in changed:
        store.opening_hours = "\n".join(new["opening_hours"])  # type: ignore[arg-type]
    if "shared_slots" in changed:
        row = session.get(ShelfSettings, store.id)
        if row is None:
            row = ShelfSettings(stock_location_id=store.id, shared_slots_allowed=False)
            session.add(row)
        row.shared_slots_allowed = bool(new["shared_slots"])
    for name in changed:
        settings.audit(session, f"store:{store.id}:{name}", user_id=user_id, area=AREA)
    session.commit()
    return read(session, store.id), changed
