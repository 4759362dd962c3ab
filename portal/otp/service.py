"""Pickup codes: issue, check, lock after too many wrong tries, resend with limits.

A code is generated with `secrets`, sent to the customer and kept only as an HMAC of
(package id, code) under a key derived from SECRET_KEY. Plain codes live only in memory
and in the encrypted SMS body in the outbox, which is wiped once the SMS is sent.

A package may also have a delegate's code (PickupCode.delegate_id set; portal/packages/delegate.py): the same
machinery and limits, issued and replaced apart from the customer's. The handover accepts either.
"""
from __future__ import annotations

import hmac
import math
import secrets
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal import crypto
from portal.accounts.models import User
from portal.db_types import rowcount, utcnow
from portal.errors import InvalidOtp, RateLimited, ValidationFailed
from portal.i18n import N_
from portal.otp.models import OtpAttempt, PickupCode

_PURPOSE = "pickup-code"

# The default of the SMS_TEMPLATE setting (portal/config.py), marked here so that the catalogue carries it: a
# template equal to a catalogue message is sent translated. Placeholders: {code}, {order_number}, {store_name}.
DEFAULT_SMS_TEMPLATE = N_("Your code for order {order_number} is {code}. Show it at {store_name} to collect "
                          "your package.")


def _hash(package_id: int, code: str) -> str:
    """Keyed hash of a code, bound to its package so a code is worthless elsewhere."""
    return crypto.keyed_hash(_PURPOSE, f"{package_id}:{code}")


def code_matches(pickup: PickupCode, code: str) -> bool:
    """True when code is this pickup code's (constant-time); no attempt is recorded: for codes the portal made."""
    return hmac.compare_digest(pickup.code_hash, _hash(pickup.package_id, code))


def generate_code(length: int | None = None) -> str:
    """A random numeric code of OTP_LENGTH digits."""
    length = length or current_app.config["OTP_LENGTH"]
    return f"{secrets.randbelow(10 ** length):0{length}d}"


def _owner(delegate_id: int | None):
    """The condition picking the customer's codes (None) or one delegate's."""
    if delegate_id is None:
        return PickupCode.delegate_id.is_(None)
    return PickupCode.delegate_id == delegate_id


def active_code(session: Session, package_id: int, delegate_id: int | None = None) -> PickupCode | None:
    """The package's current code of the customer (or of that delegate), if any (it may have expired)."""
    return session.scalar(
        select(PickupCode)
        .where(PickupCode.package_id == package_id, PickupCode.status == PickupCode.ACTIVE, _owner(delegate_id))
        .order_by(PickupCode.id.desc())
        .limit(1)
    )


def active_codes(session: Session, package_id: int) -> list[PickupCode]:
    """Every code of the package that still works: the customer's and a delegate's, oldest first."""
    return list(session.scalars(
        select(PickupCode)
        .where(PickupCode.package_id == package_id, PickupCode.status == PickupCode.ACTIVE)
        .order_by(PickupCode.id)
    ))


def latest_code(session: Session, package_id: int, delegate_id: int | None = None) -> PickupCode | None:
    """The newest code of the customer (or of that delegate) whatever its status, to explain a refusal."""
    return session.scalar(
        select(PickupCode).where(PickupCode.package_id == package_id, _owner(delegate_id))
        .order_by(PickupCode.id.desc()).limit(1)
    )


def replace_codes(session: Session, package_id: int, *, delegates: bool) -> int:
    """Stop the customer's active code (delegates=False) or every delegate's (True) working (not committed)."""
    owner = PickupCode.delegate_id.is_not(None) if delegates else PickupCode.delegate_id.is_(None)
    return rowcount(session.execute(
        update(PickupCode)
        .where(PickupCode.package_id == package_id, PickupCode.status == PickupCode.ACTIVE, owner)
        .values(status=PickupCode.REPLACED)
        .execution_options(synchronize_session=False)
    ))


def issue_code(session: Session, package_id: int, user_id: int | None, expires_at: datetime | None = None,
               now: datetime | None = None, delegate_id: int | None = None) -> str:
    """Replace the package's active code with a new one and return it (not committed).

    Without delegate_id it is the customer's code and replaces the customer's; with it, the code of that
    delegate, replacing any delegate's (a package has one delegate at a time). The customer's code and a
    delegate's never replace each other, and never coincide. It expires at expires_at (the package's
    pick-up-by time), or OTP_HOLD_DAYS from now."""
    replace_codes(session, package_id, delegates=delegate_id is not None)
    taken = {row.code_hash for row in active_codes(session, package_id)}
    code = generate_code()
    while _hash(package_id, code) in taken:
        code = generate_code()
    now = now or utcnow()
    session.add(PickupCode(
        package_id=package_id, delegate_id=delegate_id, code_hash=_hash(package_id, code), created_by_id=user_id,
        created_at=now, expires_at=expires_at or now + timedelta(days=current_app.config["OTP_HOLD_DAYS"]),
    ))
    session.flush()
    return code


def check_resend_allowed(session: Session, package_id: int) -> None:
    """Raise RateLimited when the package had OTP_RESEND_LIMIT customer's codes issued within the window (first one
    excluded); delegates' codes have their own limit (portal/packages/delegate.py)."""
    config = current_app.config
    since = utcnow() - timedelta(minutes=config["OTP_RESEND_WINDOW_MINUTES"])
    issued = session.scalar(
        select(func.count()).select_from(PickupCode)
        .where(PickupCode.package_id == package_id, PickupCode.created_at >= since, PickupCode.delegate_id.is_(None))
    ) or 0
    if issued > config["OTP_RESEND_LIMIT"]:
        minutes = config["OTP_RESEND_WINDOW_MINUTES"]
        raise RateLimited(_("The code was already sent %(issued)s times in the last %(minutes)s minutes. "
                            "Please wait before sending it again.", issued=issued, minutes=minutes))


def _counting_failures(session: Session, user_id: int) -> list:
    """Times of this user's wrong codes that count towards the per-user limit now, oldest first."""
    since = utcnow() - timedelta(minutes=current_app.config["OTP_USER_FAILURE_WINDOW_MINUTES"])
    return list(session.scalars(
        select(OtpAttempt.created_at)
        .where(OtpAttempt.user_id == user_id, OtpAttempt.success.is_(False), OtpAttempt.created_at >= since)
        .order_by(OtpAttempt.created_at)
    ))


def user_limit_wait(session: Session, user_id: int | None) -> int:
    """Whole minutes until this user may check codes again (0: not limited).

    The limit lifts when enough of the wrong codes have left the window to bring the count under
    OTP_USER_FAILURE_LIMIT, so the wait ends when the oldest of the ones that must leave does.
    """
    if user_id is None:
        return 0
    config = current_app.config
    failures = _counting_failures(session, user_id)
    over = len(failures) - config["OTP_USER_FAILURE_LIMIT"]
    if over < 0:
        return 0
    frees_at = failures[over] + timedelta(minutes=config["OTP_USER_FAILURE_WINDOW_MINUTES"])
    seconds = (frees_at - utcnow()).total_seconds()
    return max(1, math.ceil(seconds / 60))


def _check_user_limit(session: Session, user_id: int | None) -> None:
    """Raise RateLimited when this user typed too many wrong codes recently, on any package; it says how long.

    The user's row is locked first (a no-op UPDATE, on PostgreSQL and SQLite alike) and stays locked until the
    caller commits the attempt, so checks by one user on several packages at once are counted one after the
    other: the count and the insert that follows it are atomic. Lock order: the package, then the user.
    """
    if user_id is not None:
        session.execute(update(User).where(User.id == user_id).values(full_name=User.full_name)
                        .execution_options(synchronize_session=False))
    minutes = user_limit_wait(session, user_id)
    if minutes:
        raise RateLimited(ngettext(
            "Too many wrong codes were entered from your account. Try again in %(num)d minute, "
            "or ask a manager to lift the limit.",
            "Too many wrong codes were entered from your account. Try again in %(num)d minutes, "
            "or ask a manager to lift the limit.", minutes), details={"wait_minutes": minutes})


def lift_user_limit(session: Session, user_id: int) -> int:
    """Stop this user's recent wrong codes counting towards the per-user limit; returns how many were lifted.

    The attempts stay on record for their packages but no longer name the user (as when a user is deleted).
    Not committed: the caller writes the audit row in the same transaction.
    """
    since = utcnow() - timedelta(minutes=current_app.config["OTP_USER_FAILURE_WINDOW_MINUTES"])
    result = session.execute(
        update(OtpAttempt)
        .where(OtpAttempt.user_id == user_id, OtpAttempt.success.is_(False), OtpAttempt.created_at >= since)
        .values(user_id=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def pickup_sms(order_number: str, store_name: str, code: str | None, pick_up_by: str = "") -> str:
    """The customer's SMS for a package ready for pickup: the SMS_TEMPLATE with the code, or, with pickup codes
    off, a notice to bring the message. Both go through the catalogue of the current locale.

    pick_up_by (the hold's end, as a date) fills the template's {pick_up_by}; a template without that
    placeholder (written before it existed) gets a sentence saying it added."""
    if code:
        template = _(current_app.config["SMS_TEMPLATE"])
        body = template.format(code=code, order_number=order_number, store_name=store_name, pick_up_by=pick_up_by)
    else:
        template = ""
        body = _("Your order %(order)s is ready for pickup at %(store)s. Bring this message with you.",
                 order=order_number, store=store_name)
    if pick_up_by and "{pick_up_by}" not in template:
        body += " " + _("Pick it up by %(date)s.", date=pick_up_by)
    return body


def clean_code(code: object) -> str:
    """The customer's code as typed, without spaces; raises ValidationFailed when missing or malformed."""
    text = str(code or "").strip().replace(" ", "")
    length = current_app.config["OTP_LENGTH"]
    if not text:
        raise ValidationFailed(_("Enter the code from the customer's SMS."), field="otp")
    if not text.isdigit() or len(text) != length:
        raise ValidationFailed(_("The code has %(length)s digits.", length=length), field="otp")
    return text


def verify_code(session: Session, package_id: int, code: object, user_id: int | None) -> PickupCode:
    """Check a code for a package, the customer's or a delegate's, and mark it used; returns the code that matched
    (its delegate_id says whose it was). Any other code of the package stops working with it.

    The caller holds the package's row lock. On a wrong code the attempt is recorded in the
    session and InvalidOtp is raised: the caller commits that bookkeeping and nothing else. A wrong
    code counts as a wrong try on every code that works (it was a guess at each), so a delegate's code
    does not give twice as many guesses. Raises ValidationFailed for a missing or malformed code,
    RateLimited past the per-user limit.
    """
    text = clean_code(code)
    _check_user_limit(session, user_id)
    codes = active_codes(session, package_id)
    if not codes:
        last = latest_code(session, package_id)
        if last is not None and last.status == PickupCode.LOCKED:
            raise InvalidOtp(_("This code is locked after too many wrong tries. Send the customer a new code."),
                             field="otp")
        raise InvalidOtp(_("This package has no valid code. Send the customer a new code."), field="otp")
    now = utcnow()
    codes = [pickup for pickup in codes if pickup.expires_at > now]
    if not codes:
        raise InvalidOtp(_("The code has expired. Send the customer a new code."), field="otp")
    typed = _hash(package_id, text)
    matched = [pickup for pickup in codes if hmac.compare_digest(pickup.code_hash, typed)]
    if not matched:
        session.add(OtpAttempt(user_id=user_id, package_id=package_id, success=False))
        limit = current_app.config["OTP_MAX_ATTEMPTS"]
        for pickup in codes:
            pickup.failed_attempts += 1
            if pickup.failed_attempts >= limit:
                pickup.status = PickupCode.LOCKED
        left = max(limit - pickup.failed_attempts for pickup in codes)
        if left <= 0:
            raise InvalidOtp(_("Wrong code. The code is now locked; send the customer a new code."), field="otp",
                             details={"attempts_left": 0})
        raise InvalidOtp(ngettext("Wrong code. %(num)d try left.", "Wrong code. %(num)d tries left.", left),
                         field="otp", details={"attempts_left": left})
    pickup = matched[0]
    pickup.status = PickupCode.USED
    pickup.used_at = now
    for other in codes:
        if other is not pickup:
            other.status = PickupCode.REPLACED
    session.add(OtpAttempt(user_id=user_id, package_id=package_id, success=True))
    return pickup
