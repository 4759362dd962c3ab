"""The customer's link and handover QR code (issue 9): a page showing the pickup code, and the staff scanning it.

Pickup codes are stored only as keyed hashes (portal.otp), so the server cannot show a code later. The code
therefore travels in the link itself, sealed: a token is AES-SIV (authenticated, deterministic encryption) of
(package id, pickup code) under a key derived from SECRET_KEY, written in base32 (A-Z, 2-7) so that it is short,
fits a URL and a QR code's compact alphanumeric mode, and survives a scanner typing it. Nothing is stored.

A token is honoured only while its package is Ready for Customer Pickup, its hold has not ended (the link follows
an extended hold), and its code is one of the package's active codes (checked against the stored hashes, in
constant time): the customer's, or the named delegate's (whose SMS carries a link of their own). A delivered,
expired or refused package, a code replaced by a resend, locked or released, or a delegate removed or replaced
ends the link.

The customer's page (not the delegate's) also names a delegate and takes the naming back
(portal.packages.delegate with source "customer"): the token is the authority there, as it is for reading.

The customer page (portal.blueprints.customer) shows the code as digits and as a QR code whose content is
QR_PREFIX + token; the tablet's scanner types that into the scan box, which opens the handover with the code
filled in (confirming delivers through the command door with the usual attempt limits and audit row).
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from flask import current_app, has_request_context, request
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import crypto
from portal.db_types import utcnow
from portal.errors import CommandRejected, NotFound, ValidationFailed
from portal.otp import service as otp
from portal.otp.models import PickupCode
from portal.packages import hold
from portal.packages.delegate_models import PackageDelegate
from portal.packages.models import Package
from portal.packages.states import State
from portal.stores.models import StockLocation

# The customer page's path; the blueprint serves PATH + "<token>".
PATH = "/c/"
# What a scanned customer QR code starts with: no package, order or item barcode does.
QR_PREFIX = "OMSQR"
# Bound into every token: a token of another purpose or a later format never reads as one of these.
_ASSOCIATED = b"oms-portal/customer-link/v1"
_BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
# A store's opening hours: at most this many lines of this many characters.
MAX_HOURS_LINES, MAX_HOURS_LINE = 14, 80
# 16 bytes of synthetic IV + 1 to 20 bytes of plain text, in base32.
_MIN_TOKEN, _MAX_TOKEN = 28, 60


@dataclass(frozen=True)
class Claim:
    """What a genuine token says: the package, and the code sent with it (None when codes were off)."""

    package_id: int
    code: str | None


class LinkInvalid(Exception):
    """A token that does not (or no longer) open anything; reason says why, for the staff's message only."""

    def __init__(self, reason: str, package: Package | None = None):
        super().__init__(reason)
        self.reason = reason
        self.package = package


def _key() -> bytes:
    """The AES-SIV key (two AES-128 keys), derived from SECRET_KEY for this purpose only."""
    return bytes.fromhex(crypto.keyed_hash("customer-link", "aes-siv-key"))


def _varint(number: int) -> bytes:
    """A non-negative number in 7-bit groups, low first (the high bit says more follow)."""
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The number at pos and the position after it; ValueError when the bytes end first or it is too long."""
    number = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated number")
        byte = data[pos]
        number |= (byte & 0x7F) << shift
        pos += 1
        shift += 7
        if not byte & 0x80:
            return number, pos


def make_token(package_id: int, code: str | None) -> str:
    """The sealed token of a package and its pickup code (digits, or None when codes are off)."""
    digits = code or ""
    if digits and (not digits.isdigit() or len(digits) > 18):
        raise ValueError("a pickup code is 1 to 18 digits")
    plain = bytes([len(digits)]) + _varint(package_id) + (_varint(int(digits)) if digits else b"")
    sealed = AESSIV(_key()).encrypt(plain, [_ASSOCIATED])
    return base64.b32encode(sealed).decode().rstrip("=")


def read_token(token: str) -> Claim | None:
    """What a token says, or None for anything make_token did not write with this SECRET_KEY (tampered too)."""
    text = (token or "").strip().upper()
    if not _MIN_TOKEN <= len(text) <= _MAX_TOKEN or not set(text) <= _BASE32:
        return None
    try:
        sealed = base64.b32decode(text + "=" * (-len(text) % 8))
        # Base32's last character carries unused bits: only the one spelling
        # make_token writes is accepted, so an edited token never decodes.
        if base64.b32encode(sealed).decode().rstrip("=") != text:
            return None
        plain = AESSIV(_key()).decrypt(sealed, [_ASSOCIATED])
        length = plain[0]
        package_id, pos = _read_varint(plain, 1)
        code = None
        if length:
            number, pos = _read_varint(plain, pos)
            code = f"{number:0{length}d}"
    except (binascii.Error, InvalidTag, ValueError, IndexError):
        return None
    if pos != len(plain) or (code is not None and len(code) != length):
        return None
    return Claim(package_id=package_id, code=code)


def qr_payload(token: str) -> str:
    """What the customer's QR code holds: QR_PREFIX and the token."""
    return QR_PREFIX + token


def is_qr_payload(text: str) -> bool:
    """True when a scan looks like a customer QR code (whether genuine is for check_claim to say)."""
    return (text or "").strip().upper().startswith(QR_PREFIX)


def link(token: str) -> str:
    """The customer page's absolute URL: CUSTOMER_LINK_BASE_URL, else the current request's host; '' when
    neither is known (a background job without the setting), and the SMS then goes without a link."""
    base = (current_app.config.get("CUSTOMER_LINK_BASE_URL") or "").rstrip("/")
    if not base and has_request_context():
        base = request.host_url.rstrip("/")
    return f"{base}{PATH}{token}" if base else ""


def with_link(body: str, package: Package, code: str | None) -> str:
    """The ready-for-pickup SMS with the customer page's link added (unchanged when no link can be made)."""
    url = link(make_token(package.id, code))
    if not url:
        return body
    if not code:  # pickup codes are switched off: the page shows the store and the date, no code
        return body + " " + _("Your pickup page: %(link)s", link=url)
    return body + " " + _("Your code as a QR code: %(link)s", link=url)


def secret_payload(package_id: int, code: str | None) -> dict | None:
    """The ready-for-pickup event's secret part for an Extension application that texts the customer itself:
    the code and, when it can be made, the customer page's link (None with codes off: nothing secret)."""
    if not code:
        return None
    url = link(make_token(package_id, code))
    return {"pickup_code": code, **({"customer_link": url} if url else {})}


def check_claim(session: Session, claim: Claim | None, now: datetime | None = None) -> Package:
    """The package a claim opens now; LinkInvalid (with the reason and, when known, the package) otherwise.

    Reasons: "forged", "unknown", "delivered", "not_ready", "expired", "replaced" (the code is not one of the
    package's active codes any more: a new one was sent, it was locked or released, its delegate was removed or
    replaced).
    """
    return check_claim_code(session, claim, now)[0]


def check_claim_code(session: Session, claim: Claim | None,
                     now: datetime | None = None) -> tuple[Package, PickupCode | None]:
    """check_claim, and the code the claim carries: the customer's or a delegate's (PickupCode.delegate_id says);
    None when codes were off (only the customer's link exists then)."""
    if claim is None:
        raise LinkInvalid("forged")
    package = session.get(Package, claim.package_id)
    if package is None:
        raise LinkInvalid("unknown")
    if package.state == State.DELIVERED:
        raise LinkInvalid("delivered", package)
    if package.state != State.READY_FOR_CUSTOMER_PICKUP:
        raise LinkInvalid("not_ready", package)
    now = now or utcnow()
    if package.hold_until is not None and package.hold_until <= now:
        raise LinkInvalid("expired", package)
    if claim.code is None:
        if otp.active_code(session, package.id) is not None:  # sent while codes were off; a code is needed now
            raise LinkInvalid("replaced", package)
        return package, None
    # Every active code is compared (constant time each), the customer's and the delegate's.
    matches = [pickup for pickup in otp.active_codes(session, package.id) if otp.code_matches(pickup, claim.code)]
    if not matches:
        raise LinkInvalid("replaced", package)
    pickup = matches[0]
    if pickup.expires_at <= now:
        raise LinkInvalid("expired", package)
    return package, pickup


def qr_svg(payload: str) -> Markup:
    """The QR code of payload as inline SVG (dark modules on a white quiet zone; no style attributes)."""
    code = segno.make(payload, error="m")
    svg = code.svg_inline(scale=1, border=4, dark="#000", light="#fff", svgclass="qr-code", lineclass=None,
                          omitsize=True)
    return Markup(svg)  # noqa: S704 (segno's own output: paths of the payload's modules, nothing of the user's)


@dataclass(frozen=True)
class CustomerView:
    """What the customer page shows, and nothing more."""

    code: str | None
    qr: Markup
    qr_content: str
    store_id: int
    store_name: str
    address: str
    opening_hours: list[str]
    pick_up_by: str
    hold_until: datetime | None
    package_id: int = 0
    # The delegate's own link: their page shows their code and names no one.
    for_delegate: bool = False
    # On the customer's page: the delegate named now, if any (the page shows them masked).
    delegate: PackageDelegate | None = None


def customer_view(session: Session, token: str, now: datetime | None = None) -> CustomerView:
    """The customer page of a token; LinkInvalid when the link does not open anything (any reason)."""
    claim = read_token(token)
    package, pickup = check_claim_code(session, claim, now)
    assert claim is not None  # check_claim refused None
    for_delegate = pickup is not None and pickup.delegate_id is not None
    delegate = None if for_delegate else session.scalar(
        select(PackageDelegate).where(PackageDelegate.package_id == package.id,
                                      PackageDelegate.status == PackageDelegate.ACTIVE))
    store = package.stock_location
    address = ", ".join(part for part in (store.address.strip(), store.city.strip()) if part)
    content = qr_payload(make_token(package.id, claim.code))
    return CustomerView(code=claim.code, qr=qr_svg(content), qr_content=content, store_id=store.id,
                        store_name=store.name,
                        address=address, opening_hours=hours_lines(store.opening_hours),
                        pick_up_by=hold.pick_up_by_text(package), hold_until=package.hold_until,
                        package_id=package.id, for_delegate=for_delegate, delegate=delegate)


def hours_lines(text: str | None) -> list[str]:
    """A store's opening hours as the lines the customer reads (blank lines dropped)."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _store(session: Session, store_id: int) -> StockLocation:
    """The stock location, or NotFound."""
    store = session.get(StockLocation, store_id)
    if store is None:
        raise NotFound(_("Stock location not found."))
    return store


def opening_hours(session: Session, store_id: int) -> list[str]:
    """A store's opening hours, one line per row. Raises NotFound."""
    return hours_lines(_store(session, store_id).opening_hours)


def set_opening_hours(session: Session, store_id: int, lines: list[str]) -> list[str]:
    """Replace a store's opening hours (one line per row, e.g. "Mon-Sat 10:00-22:00"); commits and returns them.

    Raises NotFound, or ValidationFailed for more than MAX_HOURS_LINES lines or a line over MAX_HOURS_LINE
    characters or with a line break or another control character inside."""
    clean = clean_opening_hours(lines)
    store = _store(session, store_id)
    store.opening_hours = "\n".join(clean)
    session.commit()
    return clean


def clean_opening_hours(lines: list[str]) -> list[str]:
    """Opening hours as stored: blank lines dropped, each stripped. Raises ValidationFailed (see set_opening_hours)."""
    clean = [str(line).strip() for line in lines if str(line).strip()]
    if len(clean) > MAX_HOURS_LINES:
        raise ValidationFailed(_("Give at most %(count)s lines of opening hours.", count=MAX_HOURS_LINES),
                               field="opening_hours")
    for line in clean:
        if len(line) > MAX_HOURS_LINE or len(line.splitlines()) != 1 or not line.isprintable():
            raise ValidationFailed(_("Each line of opening hours is one line of at most %(count)s characters.",
                                     count=MAX_HOURS_LINE), field="opening_hours")
    return clean


@dataclass(frozen=True)
class ScannedQr:
    """A customer QR code the staff may hand over with: its package and the code it carries."""

    package: Package
    code: str | None
    token: str


def _scan_refusal(reason: str, package: Package | None) -> str:
    """The staff's message for a QR code that does not open a handover."""
    number = package.number if package is not None else ""
    messages = {
        "delivered": _("This QR code was already used: package %(number)s was delivered.", number=number),
        "not_ready": _("Package %(number)s is not ready for pickup, so its QR code does not work.", number=number),
        "expired": _("The hold of package %(number)s has ended, so its QR code no longer works.", number=number),
        "replaced": _("This QR code is out of date: the customer was sent a new code. Ask for the code in the "
                      "latest SMS."),
    }
    return messages.get(reason, _("This QR code is not valid. Ask the customer for the code in their SMS."))


def scan(session: Session, text: str, store_ids: list[int] | None, package_id: int | None = None,
         now: datetime | None = None) -> ScannedQr:
    """Check a scanned customer QR code (QR_PREFIX + token, or the bare token) for a handover by this user.

    package_id: the package whose handover is open; a code of another package is refused. Raises CommandRejected
    with the message to show for a forged code, another store's or package's, or one that no longer works.
    Nothing is counted as a wrong code: a QR code is no guess.
    """
    raw = (text or "").strip().upper()
    token = raw[len(QR_PREFIX):] if raw.startswith(QR_PREFIX) else raw
    claim = read_token(token)
    unknown = _("This QR code is not valid. Ask the customer for the code in their SMS.")
    if claim is None:
        raise CommandRejected(unknown)
    package = session.get(Package, claim.package_id)
    if package is None:
        raise CommandRejected(unknown)
    if store_ids is not None and package.stock_location_id not in store_ids:
        raise CommandRejected(_("This QR code is for a package of another store."))
    if package_id is not None and package.id != package_id:
        raise CommandRejected(_("This QR code is for another package (%(number)s), not this one.",
                                number=package.number))
    try:
        check_claim(session, claim, now)
    except LinkInvalid as exc:
        raise CommandRejected(_scan_refusal(exc.reason, exc.package)) from None
    return ScannedQr(package=package, code=claim.code, token=token)
