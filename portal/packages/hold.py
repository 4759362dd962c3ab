"""The hold period of a package ready for pickup: its pick-up-by date, the reminder SMS, the expiry and extensions.

A package made Ready for Customer Pickup gets hold_until = now + its store's hold_days (None: OTP_HOLD_DAYS); its
pickup code expires then too. The hold sweep (a background run, kind "hold_sweep") walks the ready packages
by id: a package within HOLD_POLICY.reminder_hours of its end gets one reminder SMS (hold_reminder_sent_at is
set by a conditional UPDATE in the same transaction as the outbox row, so a crash or a second sweep cannot send
it twice); a package past its end is marked expired (hold_expired_at, an audit row, its code released, its
shelf slot freed), shows in
the Problems tab as "Hold expired", and HOLD_POLICY.expiry_command (a command slug) runs on it, or, when that
is empty, is only proposed on the package page. Staff extend a hold with a reason (extend_hold, audited).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from portal.db_types import plain_int, rowcount, utcnow
from portal.errors import CommandRejected, ConcurrentChange, DomainError, ValidationFailed
from portal.otp.models import PickupCode
from portal.packages.delegate_models import PackageDelegate
from portal.packages.locks import lock_package
from portal.packages.models import Package, PackageLog, Transition
from portal.packages.states import State
from portal.settings import service as settings
from portal.stores.models import StockLocation

HOLD_POLICY = "HOLD_POLICY"
DEFAULT_REMINDER_HOURS = 24
MAX_REMINDER_HOURS = 720
MAX_EXTEND_DAYS = 60
MAX_HOLD_DAYS = 365
EXTEND_COMMAND = "extend-hold"
EXPIRED_COMMAND = "hold-expired"
REMINDER_PURPOSE = "hold_reminder"


@dataclass(frozen=True)
class HoldPolicy:
    """HOLD_POLICY: how long before a hold ends the reminder goes (0: none), and the command run on expiry."""

    reminder_hours: int = DEFAULT_REMINDER_HOURS
    expiry_command: str | None = None  # a transition slug; None: the command is only proposed


def _validate_policy(key: str, value: object) -> object:
    """{"reminder_hours": 0..720, "expiry_command": a command slug or null}."""
    if not isinstance(value, dict):
        raise ValidationFailed(_('%(key)s must look like {"reminder_hours": 24, "expiry_command": null}.', key=key),
                               field="json_value")
    unknown = sorted(set(value) - {"reminder_hours", "expiry_command"})
    if unknown:
        raise ValidationFailed(_("Unknown %(key)s field: %(field)s.", key=key, field=unknown[0]), field="json_value")
    hours = value.get("reminder_hours", DEFAULT_REMINDER_HOURS)
    if not isinstance(hours, int) or isinstance(hours, bool) or not 0 <= hours <= MAX_REMINDER_HOURS:
        raise ValidationFailed(_("reminder_hours must be a whole number from 0 to %(maximum)s.",
                                 maximum=MAX_REMINDER_HOURS), field="reminder_hours")
    command = value.get("expiry_command")
    if command in ("", None):
        command = None
    elif not isinstance(command, str) or len(command) > 120:
        raise ValidationFailed(_("expiry_command must be a command slug or null."), field="expiry_command")
    return {"reminder_hours": hours, "expiry_command": command}


def _check_policy(session: Session, value: object) -> None:
    """The expiry command must be an active command that starts from Ready for Customer Pickup."""
    slug = value.get("expiry_command") if isinstance(value, dict) else None
    if slug is None:
        return
    transition = session.scalar(select(Transition).where(Transition.slug == slug))
    if transition is None or transition.source_state != State.READY_FOR_CUSTOMER_PICKUP:
        raise ValidationFailed(_("expiry_command must be the slug of a command that starts from Ready for "
                                 "Customer Pickup."), field="expiry_command")


settings.register_validator(HOLD_POLICY, _validate_policy)
settings.register_check(HOLD_POLICY, _check_policy)


def policy(session: Session) -> HoldPolicy:
    """The stored HOLD_POLICY, or its defaults."""
    value = settings.get_value(session, HOLD_POLICY)
    if not isinstance(value, dict):
        return HoldPolicy()
    hours = plain_int(value.get("reminder_hours"))
    command = value.get("expiry_command")
    return HoldPolicy(reminder_hours=DEFAULT_REMINDER_HOURS if hours is None else hours,
                      expiry_command=command if isinstance(command, str) and command else None)


def hold_days(store: StockLocation | None) -> int:
    """How many days a ready package waits for its customer at this store."""
    if store is not None and store.hold_days:
        return store.hold_days
    return int(current_app.config["OTP_HOLD_DAYS"])


def start_hold(package: Package, now: datetime | None = None) -> datetime:
    """Set a package's pick-up-by time as it becomes ready (and forget an earlier hold's reminder and expiry)."""
    now = now or utcnow()
    package.hold_until = now + timedelta(days=hold_days(package.stock_location))
    package.hold_reminder_sent_at = None
    package.hold_expired_at = None
    return package.hold_until


def pick_up_by_text(package: Package) -> str:
    """The pick-up-by date as the customer reads it: the date in the store's time zone, in the current locale."""
    if package.hold_until is None:
        return ""
    try:
        zone = ZoneInfo(package.stock_location.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return format_date(package.hold_until.astimezone(zone).date(), "medium")


def is_expired(package: Package, now: datetime | None = None) -> bool:
    """True for a ready package whose hold has ended."""
    return (package.state == State.READY_FOR_CUSTOMER_PICKUP and package.hold_until is not None
            and package.hold_until <= (now or utcnow()))


def proposed_command(session: Session, package: Package) -> Transition | None:
    """The command HOLD_POLICY names for an expired hold, when it is active and starts from the package's state."""
    slug = policy(session).expiry_command
    if slug is None:
        return None
    transition = session.scalar(select(Transition).where(Transition.slug == slug))
    if transition is None or not transition.is_active or transition.source_state != package.state:
        return None
    return transition


def reminder_sms(package: Package) -> str:
    """The reminder the customer gets before the hold ends."""
    return _("Reminder: your order %(order)s is waiting for you at %(store)s until %(date)s.",
             order=package.order_number, store=package.stock_location.name, date=pick_up_by_text(package))


def release_codes(session: Session, package_id: int) -> int:
    """Stop the package's active pickup codes working, the customer's and a delegate's, and end the delegate's
    naming with its code (not committed)."""
    session.execute(update(PackageDelegate)
                    .where(PackageDelegate.package_id == package_id, PackageDelegate.status == PackageDelegate.ACTIVE)
                    .values(status=PackageDelegate.ENDED, ended_at=utcnow()).execution_options(synchronize_session=False))
    return rowcount(session.execute(
        update(PickupCode).where(PickupCode.package_id == package_id, PickupCode.status == PickupCode.ACTIVE)
        .values(status=PickupCode.REPLACED).execution_options(synchronize_session=False)))


def extend_hold(session: Session, package_id: int, *, days: object, reason: object, user_id: int | None,
                store_ids: list[int] | None) -> Package:
    """Push a ready package's pick-up-by date `days` days further (from now, when it has already ended), with a
    reason written to the audit row; its active code lasts as long, and a new reminder may go. Commits.

    Raises NotFound, ValidationFailed, CommandRejected or ConcurrentChange; on any of them nothing changes.
    """
    count = plain_int(days)
    if count is None or not 1 <= count <= MAX_EXTEND_DAYS:
        raise ValidationFailed(_("Extend by 1 to %(maximum)s days.", maximum=MAX_EXTEND_DAYS), field="days")
    text = str(reason or "").strip()[:500]
    if not text:
        raise ValidationFailed(_("Say why the hold is extended."), field="reason")
    try:
        package = lock_package(session, package_id, store_ids)
        if package.state != State.READY_FOR_CUSTOMER_PICKUP:
            raise CommandRejected(_("Only a package ready for customer pickup has a hold to extend."))
        now = utcnow()
        start = package.hold_until if package.hold_until is not None and package.hold_until > now else now
        package.hold_until = start + timedelta(days=count)
        package.hold_reminder_sent_at = None
        package.hold_expired_at = None
        session.execute(update(PickupCode)
                        .where(PickupCode.package_id == package.id, PickupCode.status == PickupCode.ACTIVE)
                        .values(expires_at=package.hold_until).execution_options(synchronize_session=False))
        session.add(PackageLog(package_id=package.id, from_state=package.state, to_state=package.state,
                               command=EXTEND_COMMAND, user_id=user_id,
                               note=_("Hold extended by %(days)s day(s) to %(date)s: %(reason)s", days=count,
                                      date=pick_up_by_text(package), reason=text)))
        session.commit()
    except DomainError:
        session.rollback()
        raise
    except (OperationalError, IntegrityError) as exc:
        session.rollback()
        raise ConcurrentChange(_("Someone else changed this package at the same moment. Please try again.")) from exc
    session.refresh(package)
    return package
