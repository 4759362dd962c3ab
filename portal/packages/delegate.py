"""Delegate collector: someone else collects a package ready for pickup, with a pickup code of their own.

The customer (on the customer page) or staff (on the customer's call) name a delegate with a name and a mobile
number. The delegate gets a code by SMS: a PickupCode bound to the delegate (portal/otp), issued, hashed,
limited and checked by the same machinery as the customer's. The handover accepts either code; the delivery
(the one command door, portal.packages.commands) says on its audit row and its delivered events who collected.

Decisions:
- The customer's own code keeps working while a delegate is named: the customer may still come themself.
  Naming a delegate tells the customer by SMS when staff did it (a stranger calling the store is noticed).
- A package has one delegate at a time. Naming another replaces the first (their code stops working);
  removing the delegate stops their code working. Both are audited and raise package.delegate_changed.
- A wrong code at the handover counts against every code that works, so a second code gives no extra guesses.
- Naming a delegate is limited like resending a code: OTP_RESEND_LIMIT namings per package within
  OTP_RESEND_WINDOW_MINUTES after the first.
- The delegate's SMS carries a link of their own (portal.packages.customer_link): a page with their code as a
  QR code, which stops working when they are removed or replaced. The customer's page names and removes the
  delegate (source "customer"; the customer's signed link is the authority, so store_ids is None).
- With pickup codes switched off the delegate is still named (the handover shows who collects) and gets an SMS
  without a code. With PICKUP_CODE_DELIVERY = extension_app the portal sends no SMS: the event carries the code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from portal.db_types import utcnow
from portal.errors import CommandRejected, ConcurrentChange, DomainError, RateLimited, ValidationFailed
from portal.otp import service as otp
from portal.otp.models import PickupCode
from portal.outbox import service as outbox
from portal.packages import customer_link, hold
from portal.packages.delegate_models import PackageDelegate
from portal.packages.events import package_payload
from portal.packages.locks import lock_package
from portal.packages.models import Package, PackageLog
from portal.packages.states import State
from portal.settings import service as settings
from portal.webhooks import catalogue, events

NAME_MAX_LENGTH = 120
SOURCES = (PackageDelegate.STAFF, PackageDelegate.CUSTOMER)
# Audit rows' command slugs (the history shows them as "Name delegate", "Replace delegate", "Remove delegate").
NAME_COMMAND = "name-delegate"
REPLACE_COMMAND = "replace-delegate"
REMOVE_COMMAND = "remove-delegate"

_PHONE_SEPARATORS = re.compile(r"[\s\-./()]")
_PHONE = re.compile(r"\+?[0-9]{7,15}")


@dataclass
class Collector:
    """Who may collect a package: its customer, and the delegate when one is named."""

    customer_name: str
    customer_phone: str  # masked
    delegate: PackageDelegate | None


@dataclass
class DelegateChange:
    """The outcome of naming, replacing or removing a delegate."""

    package: Package
    delegate: PackageDelegate | None  # the new delegate; None after a removal
    previous: PackageDelegate | None  # the delegate replaced or removed
    message: str
    sms_ids: list[int]


def clean_phone(raw: object) -> str:
    """A mobile number as the SMS provider takes it: digits with an optional leading +, 7 to 15 digits long
    (E.164's limit); spaces, dashes, dots and brackets dropped and a leading 00 read as +. Raises ValidationFailed.

    The portal stores customers' numbers as the order gave them; the delegate's is typed at the counter, so it
    is checked and normalised here.
    """
    text = _PHONE_SEPARATORS.sub("", str(raw or "").strip())
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text:
        raise ValidationFailed(_("Enter the delegate's mobile number."), field="phone")
    if not _PHONE.fullmatch(text):
        raise ValidationFailed(_("Enter a mobile number of 7 to 15 digits, like +90 532 123 45 67."), field="phone")
    return text


def clean_name(raw: object) -> str:
    """The delegate's name, spaces collapsed. Raises ValidationFailed when missing or too long."""
    text = " ".join(str(raw or "").split())
    if not text:
        raise ValidationFailed(_("Enter the name of the person who collects."), field="name")
    if len(text) > NAME_MAX_LENGTH:
        raise ValidationFailed(_("The name may be at most %(max)s characters.", max=NAME_MAX_LENGTH), field="name")
    return text


def mask_phone(phone: str) -> str:
    """A phone number with all but its first three and last two characters hidden: +90*******67."""
    phone = phone or ""
    if len(phone) <= 5:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 5) + phone[-2:]


def mask_name(name: str) -> str:
    """A name with only its first word whole and the others' initials: "Ayse Yilmaz Kaya" -> "Ayse Y. K."."""
    words = (name or "").split()
    if not words:
        return ""
    return " ".join([words[0], *(word[0] + "." for word in words[1:])])


def _same_number(a: str, b: str) -> bool:
    """Whether two numbers are the same once separators are dropped (with or without the leading +)."""
    def digits(value: str) -> str:
        """The number's digits only."""
        return re.sub(r"[^0-9]", "", value or "")
    return bool(digits(a)) and digits(a).lstrip("0") == digits(b).lstrip("0")


def current_delegate(session: Session, package_id: int) -> PackageDelegate | None:
    """The package's active delegate, if any."""
    return session.scalar(select(PackageDelegate).where(PackageDelegate.package_id == package_id,
                                                        PackageDelegate.status == PackageDelegate.ACTIVE))


def current_delegates(session: Session, package_ids: list[int]) -> dict[int, PackageDelegate]:
    """The active delegates of these packages, by package id (one query, for a list)."""
    if not package_ids:
        return {}
    rows = session.scalars(select(PackageDelegate).where(PackageDelegate.package_id.in_(package_ids),
                                                         PackageDelegate.status == PackageDelegate.ACTIVE))
    return {row.package_id: row for row in rows}


def who_collects(session: Session, package: Package) -> Collector:
    """The customer and, when named, the delegate who may collect the package."""
    delegate = current_delegate(session, package.id) if package.state == State.READY_FOR_CUSTOMER_PICKUP else None
    return Collector(customer_name=package.customer.full_name, customer_phone=mask_phone(package.customer.phone),
                     delegate=delegate)


def delegate_code(session: Session, delegate: PackageDelegate) -> PickupCode | None:
    """The delegate's newest code, whatever its status (None when codes are switched off)."""
    return otp.latest_code(session, delegate.package_id, delegate_id=delegate.id)


def _label(delegate: PackageDelegate) -> str:
    """The delegate as the audit rows name them: name and masked phone."""
    return _("%(name)s (%(phone)s)", name=delegate.name, phone=mask_phone(delegate.phone))


def delegate_payload(delegate: PackageDelegate) -> dict:
    """The delegate as events show them."""
    return {"id": delegate.id, "name": delegate.name, "phone": delegate.phone, "source": delegate.source}


def _check_naming_limit(session: Session, package_id: int) -> None:
    """Raise RateLimited when the package had OTP_RESEND_LIMIT delegates named within the window after the first:
    each naming texts a number typed at the counter."""
    config = current_app.config
    since = utcnow() - timedelta(minutes=config["OTP_RESEND_WINDOW_MINUTES"])
    named = session.scalar(select(func.count()).select_from(PackageDelegate).where(
        PackageDelegate.package_id == package_id, PackageDelegate.created_at >= since)) or 0
    if named > config["OTP_RESEND_LIMIT"]:
        raise RateLimited(_("A delegate was already named %(count)s times in the last %(minutes)s minutes. "
                            "Please wait before naming another.", count=named,
                            minutes=config["OTP_RESEND_WINDOW_MINUTES"]))


def _end(session: Session, delegate: PackageDelegate, status: str) -> None:
    """End a delegate's naming and stop their code working (not committed)."""
    delegate.status = status
    delegate.ended_at = utcnow()
    session.execute(update(PickupCode)
                    .where(PickupCode.delegate_id == delegate.id, PickupCode.status == PickupCode.ACTIVE)
                    .values(status=PickupCode.REPLACED).execution_options(synchronize_session=False))
    session.flush()  # the partial unique index must see the old row ended before a new one is added


def delegate_sms(package: Package, delegate: PackageDelegate, code: str | None) -> str:
    """The delegate's SMS: who sent them, where to go, by when, and their own code."""
    customer = package.customer.full_name
    store = package.stock_location.name
    if code:
        body = _("%(customer)s asked you to collect order %(order)s at %(store)s. Your pickup code is %(code)s.",
                 customer=customer, order=package.order_number, store=store, code=code)
    else:
        body = _("%(customer)s asked you to collect order %(order)s at %(store)s. Bring this message with you.",
                 customer=customer, order=package.order_number, store=store)
    pick_up_by = hold.pick_up_by_text(package)
    if pick_up_by:
        body += " " + _("Pick it up by %(date)s.", date=pick_up_by)
    return body


def customer_notice_sms(package: Package, delegate: PackageDelegate) -> str:
    """The customer's SMS when staff named a delegate: who may now collect, and what to do if they did not ask."""
    return _("%(name)s (%(phone)s) may now collect your order %(order)s at %(store)s with a code of their own. "
             "Your code still works. If you did not ask for this, please contact the store.",
             name=delegate.name, phone=mask_phone(delegate.phone), order=package.order_number,
             store=package.stock_location.name)


def name_delegate(session: Session, package_id: int, *, name: object, phone: object, user_id: int | None = None,
                  store_ids: list[int] | None, source: str = PackageDelegate.STAFF) -> DelegateChange:
    """Name (or replace) the person who collects a package ready for pickup, and text them a code of their own.

    source is "staff" (on the customer's call; the customer is told by SMS) or "customer" (the customer page).
    store_ids limits it to those stores (None: any; the customer page passes None, its signed link is the
    authority). Commits; the SMS go after the commit. Raises ValidationFailed (name, phone, or the customer's
    own number), NotFound (unknown package or another store's), CommandRejected (not ready for pickup, or its
    hold has ended),
    RateLimited (too many namings) or ConcurrentChange; on any of them nothing changes.
    """
    if source not in SOURCES:
        raise ValidationFailed(_("source must be staff or customer."), field="source")
    clean = clean_name(name)
    number = clean_phone(phone)
    try:
        package = lock_package(session, package_id, store_ids)
        if package.state != State.READY_FOR_CUSTOMER_PICKUP:
            raise CommandRejected(_("A delegate can only be named for a package ready for customer pickup."))
        if hold.is_expired(package, utcnow()):
            raise CommandRejected(_("The hold of this package has ended: extend it before naming someone to collect."))
        if _same_number(number, package.customer.phone):
            raise ValidationFailed(_("That is the customer's own number: their code already works."), field="phone")
        _check_naming_limit(session, package.id)
        previous = current_delegate(session, package.id)
        if previous is not None:
            _end(session, previous, PackageDelegate.REPLACED)
        delegate = PackageDelegate(package_id=package.id, name=clean, phone=number, source=source,
                                   named_by_id=user_id, created_at=utcnow())
        session.add(delegate)
        session.flush()
        code = None
        if settings.is_otp_enabled(session):
            code = otp.issue_code(session, package.id, user_id, expires_at=package.hold_until, delegate_id=delegate.id)
        sms_ids: list[int] = []
        extension = settings.pickup_code_delivery(session) == settings.EXTENSION_APP
        if not extension:
            body = delegate_sms(package, delegate, code)
            if code:  # their own link: a page with their code as a QR code (codes off: the customer's link only)
                body = customer_link.with_link(body, package, code)
            sms_ids.append(outbox.enqueue_sms(session, to=delegate.phone, body=body, package_id=package.id,
                                              purpose="delegate_code").id)
            if source == PackageDelegate.STAFF:
                sms_ids.append(outbox.enqueue_sms(session, to=package.customer.phone,
                                                  body=customer_notice_sms(package, delegate),
                                                  package_id=package.id, purpose="delegate_notice").id)
        action = "replaced" if previous is not None else "named"
        _record_change(session, package, action, delegate, previous,
                       secret=customer_link.secret_payload(package.id, code) if extension else None)
        by_customer = source == PackageDelegate.CUSTOMER
        if previous is not None:
            note = (_("Delegate %(old)s replaced with %(new)s by the customer.", old=_label(previous),
                      new=_label(delegate)) if by_customer else
                    _("Delegate %(old)s replaced with %(new)s by staff on the customer's request.",
                      old=_label(previous), new=_label(delegate)))
        else:
            note = (_("Delegate %(new)s named by the customer.", new=_label(delegate)) if by_customer else
                    _("Delegate %(new)s named by staff on the customer's request.", new=_label(delegate)))
        note += " " + (_("They were sent a pickup code of their own; the customer's code still works.") if code
                       else _("They were sent a message to bring."))
        session.add(PackageLog(package_id=package.id, from_state=package.state, to_state=package.state,
                               command=REPLACE_COMMAND if previous is not None else NAME_COMMAND, user_id=user_id,
                               note=note))
        session.commit()
    except DomainError:
        session.rollback()
        raise
    except (OperationalError, IntegrityError) as exc:
        session.rollback()
        raise ConcurrentChange(_("Someone else changed this package at the same moment. Please try again.")) from exc
    outbox.deliver_after_commit(session, sms_ids)
    if extension:
        message = _("%(name)s may collect package %(number)s; the Extension application texts them their code.",
                    name=delegate.name, number=package.number)
    elif code:
        message = _("%(name)s may collect package %(number)s and was sent a code of their own.",
                    name=delegate.name, number=package.number)
    else:
        message = _("%(name)s may collect package %(number)s.", name=delegate.name, number=package.number)
    return DelegateChange(package=package, delegate=delegate, previous=previous, message=message, sms_ids=sms_ids)


def remove_delegate(session: Session, package_id: int, *, user_id: int | None = None, store_ids: list[int] | None,
                    source: str = PackageDelegate.STAFF) -> DelegateChange:
    """Take back the naming of a package's delegate: their code stops working at once. Audited; commits.

    Nothing happens (and nothing is written) when the package has no delegate. Raises NotFound or
    ConcurrentChange; ValidationFailed for an unknown source.
    """
    if source not in SOURCES:
        raise ValidationFailed(_("source must be staff or customer."), field="source")
    try:
        package = lock_package(session, package_id, store_ids)
        previous = current_delegate(session, package.id)
        if previous is None:
            session.rollback()
            return DelegateChange(package=package, delegate=None, previous=None, sms_ids=[],
                                  message=_("Package %(number)s has no delegate.", number=package.number))
        _end(session, previous, PackageDelegate.REMOVED)
        _record_change(session, package, "removed", None, previous)
        note = (_("Delegate %(old)s removed by the customer; their code no longer works.", old=_label(previous))
                if source == PackageDelegate.CUSTOMER else
                _("Delegate %(old)s removed by staff; their code no longer works.", old=_label(previous)))
        session.add(PackageLog(package_id=package.id, from_state=package.state, to_state=package.state,
                               command=REMOVE_COMMAND, user_id=user_id, note=note))
        session.commit()
    except DomainError:
        session.rollback()
        raise
    except (OperationalError, IntegrityError) as exc:
        session.rollback()
        raise ConcurrentChange(_("Someone else changed this package at the same moment. Please try again.")) from exc
    return DelegateChange(package=package, delegate=None, previous=previous, sms_ids=[],
                          message=_("%(name)s no longer collects package %(number)s; their code no longer works.",
                                    name=previous.name, number=package.number))


def _record_change(session: Session, package: Package, action: str, delegate: PackageDelegate | None,
                   previous: PackageDelegate | None, secret: dict | None = None) -> None:
    """Raise package.delegate_changed (not committed)."""
    payload = package_payload(package)
    payload["delegate_change"] = {
        "action": action,
        "delegate": delegate_payload(delegate) if delegate is not None else None,
        "previous": delegate_payload(previous) if previous is not None else None,
    }
    events.record_event(session, catalogue.PACKAGE_DELEGATE_CHANGED, payload, package_id=package.id,
                        secret_payload=secret)


def record_collection(session: Session, pickup: PickupCode) -> PackageDelegate | None:
    """After a code was verified: the delegate whose code it was, marked as having collected (not committed).

    None when it was the customer's code. Called by the delivery command inside its transaction.
    """
    if pickup.delegate_id is None:
        return None
    delegate = session.get(PackageDelegate, pickup.delegate_id)
    if delegate is None:
        return None
    delegate.status = PackageDelegate.COLLECTED
    delegate.ended_at = utcnow()
    return delegate


def collection_note(delegate: PackageDelegate) -> str:
    """The delivery's audit note when a delegate collected."""
    return _("Collected by delegate %(delegate)s with their own pickup code.", delegate=_label(delegate))


def collected_by(delegate: PackageDelegate | None) -> dict:
    """The delivered events' collected_by: the customer, or the delegate with their name and phone."""
    if delegate is None:
        return {"type": "customer"}
    return {"type": "delegate", "delegate": delegate_payload(delegate)}


def release(session: Session, package_id: int) -> None:
    """The package left the counter: an active delegate's naming ends with it (not committed)."""
    session.execute(update(PackageDelegate)
                    .where(PackageDelegate.package_id == package_id, PackageDelegate.status == PackageDelegate.ACTIVE)
                    .values(status=PackageDelegate.ENDED, ended_at=utcnow())
                    .execution_options(synchronize_session=False))


def collector_name(session: Session, package_id: int) -> str | None:
    """The name of the delegate who collected the package, when one did."""
    return session.scalar(select(PackageDelegate.name).where(PackageDelegate.package_id == package_id,
                                                             PackageDelegate.status == PackageDelegate.COLLECTED)
                          .order_by(PackageDelegate.id.desc()).limit(1))
