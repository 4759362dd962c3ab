"""Manager override: handing a package over without the customer's code, after a manager checked an ID.

The delivery command (SELF_SERVICE_PACKAGE_DELIVERY_COMMAND) takes an `override` parameter instead of the
code; authorise() decides whether it may run. A manager (admin or brand manager) authorises it themself; a
store staff member needs a manager to type their username and password on the tablet. Wrong passwords are
counted (per staff member here, and on the manager's account by the login's own lock). The store can
switch the override off (StockLocation.manager_override_allowed).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.accounts import auth
from portal.accounts.models import Role, User
from portal.db_types import utcnow
from portal.errors import CommandRejected, NotFound, PermissionDenied, RateLimited, ValidationFailed
from portal.i18n import N_
from portal.packages.models import Package, PackageLog
from portal.packages.states import State
from portal.stores.models import StockLocation

MANAGER_ROLES = (Role.ADMIN.value, Role.BRAND_MANAGER.value)
# The audit row of a refused override attempt (a wrong or missing manager password); counted for the limit.
REFUSED_COMMAND = "manager-override-refused"
NOTE_MAX_LENGTH = 500

# reason code -> label, in the order the dialog lists them; "other" needs a note.
REASONS: dict[str, str] = {
    "lost_sms": N_("Customer lost the SMS"),
    "phone_battery": N_("Phone out of battery"),
    "code_not_received": N_("Code not received"),
    "other": N_("Other"),
}


@dataclass
class Authorisation:
    """A checked override: the reason, the note and the manager who authorised it."""

    reason: str
    note: str
    manager: User


def is_manager(user: User | None) -> bool:
    """True for the roles that may authorise an override."""
    return user is not None and user.role in MANAGER_ROLES


def reason_label(reason: str) -> str:
    """The translated label of a reason code."""
    return _(REASONS[reason])


def recent_failures(session: Session, user_id: int | None) -> int:
    """Refused override attempts by this user within OVERRIDE_FAILURE_WINDOW_MINUTES."""
    since = utcnow() - timedelta(minutes=current_app.config["OVERRIDE_FAILURE_WINDOW_MINUTES"])
    return session.scalar(
        select(func.count()).select_from(PackageLog)
        .where(PackageLog.command == REFUSED_COMMAND, PackageLog.created_at >= since,
               PackageLog.user_id.is_(None) if user_id is None else PackageLog.user_id == user_id)
    ) or 0


def _refuse(session: Session, package: Package, user_id: int | None, note: str) -> None:
    """Record a refused attempt on the package and commit it, so the rollback that follows keeps it."""
    session.add(PackageLog(package_id=package.id, from_state=package.state, to_state=package.state,
                           command=REFUSED_COMMAND, user_id=user_id, note=note))
    session.commit()


def _clean_input(raw: object) -> tuple[str, str]:
    """The reason code and note of an override parameter, checked. Raises ValidationFailed."""
    if not isinstance(raw, dict):
        raise ValidationFailed(_("override must be an object with reason, note and id_checked."), field="override")
    reason = str(raw.get("reason") or "").strip()
    if reason not in REASONS:
        raise ValidationFailed(_("Choose why the package is handed over without a code."), field="override.reason")
    note = str(raw.get("note") or "").strip()[:NOTE_MAX_LENGTH]
    if reason == "other" and not note:
        raise ValidationFailed(_("Say in the note why the package is handed over without a code."),
                               field="override.note")
    if raw.get("id_checked") not in (True, "true", "on", "1", 1):
        raise ValidationFailed(_("Check the customer's ID before handing over without a code."),
                               field="override.id_checked")
    return reason, note


def _manager_from_credentials(session: Session, package: Package, raw: dict, user_id: int | None) -> User:
    """The manager whose username and password were typed on the tablet. Raises on a wrong or missing login."""
    username = str(raw.get("manager_username") or "").strip()
    password = str(raw.get("manager_password") or "")
    if not username or not password:
        raise PermissionDenied(_("Only a manager can hand over without a code: ask a manager to enter their "
                                 "username and password."))
    if recent_failures(session, user_id) >= current_app.config["OVERRIDE_MAX_FAILURES"]:
        raise RateLimited(_("Too many wrong manager passwords. Try again in a few minutes."))
    try:
        # A locked manager account answers like a wrong password (authenticate tells nobody which accounts exist).
        manager = auth.authenticate(session, username, password)
    except ValidationFailed:
        _refuse(session, package, user_id, _("Manager override refused: wrong manager username or password."))
        raise ValidationFailed(_("Wrong manager username or password."), field="override.manager_password") from None
    if not is_manager(manager):
        _refuse(session, package, user_id,
                _("Manager override refused: %(name)s is not a manager.", name=manager.username))
        raise PermissionDenied(_("%(name)s is not a manager.", name=manager.full_name or manager.username))
    return manager


def authorise(session: Session, package: Package, raw: object, user_id: int | None) -> Authorisation:
    """Check an override of the handover code on this (locked) package. Raises a DomainError when refused.

    Refused: the store switched the override off, the package is not ready for customer pickup, the
    reason or the ID check is missing, the user is no manager and no manager's login was typed, the
    manager's login is wrong (counted), or too many wrong logins were typed lately.
    """
    if not package.stock_location.manager_override_allowed:
        raise CommandRejected(_("This store does not allow handing packages over without a code."))
    if package.state != State.READY_FOR_CUSTOMER_PICKUP:
        raise CommandRejected(_("Only packages ready for customer pickup can be handed over without a code."))
    reason, note = _clean_input(raw)
    assert isinstance(raw, dict)
    performer = session.get(User, user_id) if user_id is not None else None
    typed = str(raw.get("manager_username") or "").strip()
    if is_manager(performer) and (not typed or (performer is not None and typed == performer.username)):
        assert performer is not None
        return Authorisation(reason=reason, note=note, manager=performer)
    return Authorisation(reason=reason, note=note,
                         manager=_manager_from_credentials(session, package, raw, user_id))


def audit_note(authorisation: Authorisation) -> str:
    """The audit row's note of a delivery by override."""
    manager = authorisation.manager.full_name or authorisation.manager.username
    note = _("Handed over without a code (manager override, ID checked): %(reason)s. Authorised by %(manager)s.",
             reason=reason_label(authorisation.reason), manager=manager)
    return f"{note} {authorisation.note}" if authorisation.note else note


def notice_sms(order_number: str, store_name: str) -> str:
    """The SMS telling the customer their order was handed over without the pickup code."""
    return _("Your order %(order)s was handed over at %(store)s after an ID check, without the pickup code. "
             "If this was not you, please contact the store.", order=order_number, store=store_name)


def store_allows(session: Session, store_id: int) -> bool:
    """Whether the store allows the override. Raises NotFound for an unknown store."""
    return _store(session, store_id).manager_override_allowed


def set_store_allowed(session: Session, store_id: int, allowed: bool) -> bool:
    """Switch the override on or off for one store; returns the new value. Raises NotFound."""
    store = _store(session, store_id)
    store.manager_override_allowed = bool(allowed)
    session.commit()
    return store.manager_override_allowed


def _store(session: Session, store_id: int) -> StockLocation:
    """The stock location, or NotFound."""
    store = session.get(StockLocation, store_id)
    if store is None:
        raise NotFound(_("Stock location not found."))
    return store
