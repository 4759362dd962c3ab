"""Partial pickup: the items a customer refuses (or staff cannot find) at the handover, recorded per line.

The vendor keeps one state per package, and its own answer to items that cannot go with the rest ("Product
Not Found & Wrong Product") is to split them into a package of their own. We do the same at the counter: the
refused units move to a new refund package (number <package>-R<n>, same order, store and customer), which the
vendor's Package Packed for Refund command takes to Packed for Refund, while the package keeps what the
customer took and is delivered by the normal delivery command. When every unit is refused there is nothing to
deliver: the package itself goes to Packed for Refund. One HandoverLine row per line and handover says how many
units were delivered and refused, and why; it never changes afterwards (a line has one row per package).

This module only validates, moves items and records; portal.packages.partial runs the commands.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import ForeignKey, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from portal.db_types import UTCDateTime, plain_int, utcnow
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.i18n import N_
from portal.packages.models import Package, PackageItem

# Why a customer did not take an item; "not_found" is an item staff could not find at the pickup.
REASONS: dict[str, str] = {
    "damaged": N_("Damaged"),
    "wrong_item": N_("Wrong item"),
    "changed_mind": N_("Changed mind"),
    "not_found": N_("Not found"),
}
SPLIT_SUFFIX = "-R"


class HandoverLine(db.Model):
    """One line of a package at a handover with refusals: units delivered, units refused and why.

    package_id is the package at the counter; refund_package_id the package the refused units went to (the
    split refund package, or the package itself when every unit was refused).
    """

    __tablename__ = "handover_lines"
    __table_args__ = (UniqueConstraint("package_id", "order_item", name="uq_handover_lines_package_order_item"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), index=True)
    order_item: Mapped[int] = mapped_column()
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(160))
    quantity: Mapped[int] = mapped_column()
    delivered: Mapped[int] = mapped_column(default=0)
    refused: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str] = mapped_column(String(20), default="")
    refund_package_id: Mapped[int | None] = mapped_column(ForeignKey("packages.id", ondelete="SET NULL"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def as_json(self) -> dict:
        """The line as events and the API show it."""
        return {"order_item": self.order_item, "sku": self.sku, "name": self.name, "quantity": self.quantity,
                "delivered": self.delivered, "refused": self.refused, "reason": self.reason or None}


@dataclass(frozen=True)
class Refusal:
    """Units of one package line the customer refuses, and why."""

    item: PackageItem
    quantity: int
    reason: str


def reason_label(reason: str) -> str:
    """A reason's words, translated."""
    return _(REASONS[reason]) if reason in REASONS else reason


def parse_refused(raw: object, package: Package) -> list[Refusal]:
    """Turn [{order_item, quantity?, reason}] into refusals of this package's lines. Raises ValidationFailed.

    quantity defaults to the whole line; a line may be named once; an order item of another package, an unknown
    reason or more units than the line has are refused with the field "refused".
    """
    if raw in (None, "", []):
        return []
    if not isinstance(raw, list):
        raise ValidationFailed(_("refused must be a list of {order_item, quantity, reason}."), field="refused")
    items = {item.order_item: item for item in package.items}
    refusals: list[Refusal] = []
    seen: set[int] = set()
    for entry in raw:
        if not isinstance(entry, dict) or "order_item" not in entry:
            raise ValidationFailed(_("Each refused line needs order_item and reason."), field="refused")
        order_item = plain_int(entry.get("order_item"))
        item = items.get(order_item) if order_item is not None else None
        if item is None:
            raise ValidationFailed(_("Order item %(item)s is not in this package.", item=entry.get("order_item")),
                                   field="refused")
        if item.order_item in seen:
            raise ValidationFailed(_("%(name)s is refused twice; name each line once.", name=item.name),
                                   field="refused")
        seen.add(item.order_item)
        reason = str(entry.get("reason") or "")
        if reason not in REASONS:
            raise ValidationFailed(_("Choose why %(name)s is refused.", name=item.name), field="refused",
                                   details={"order_item": item.order_item})
        count = item.quantity if entry.get("quantity") in (None, "") else plain_int(entry.get("quantity"))
        if count is None or not 1 <= count <= item.quantity:
            raise ValidationFailed(units_message(item), field="refused", details={"order_item": item.order_item})
        refusals.append(Refusal(item=item, quantity=count, reason=reason))
    return refusals


def units_message(item: PackageItem) -> str:
    """The message for a refused unit count outside 1..the line's quantity."""
    return _("Refuse between 1 and %(count)s of %(name)s.", count=item.quantity, name=item.name)


def refuses_everything(package: Package, refusals: list[Refusal]) -> bool:
    """Whether the refusals cover every unit of every line (then nothing is delivered)."""
    refused = {r.item.order_item: r.quantity for r in refusals}
    return all(refused.get(item.order_item, 0) == item.quantity for item in package.items)


def all_refused(package: Package, reason: str) -> list[Refusal]:
    """Every unit of every line refused for one reason (the whole package refused). Raises ValidationFailed."""
    if reason not in REASONS:
        raise ValidationFailed(_("Choose why the customer refuses the package."), field="reason")
    return [Refusal(item=item, quantity=item.quantity, reason=reason) for item in package.items]


def record(session: Session, package: Package, refusals: list[Refusal], *, refund_package: Package,
           user_id: int | None) -> list[HandoverLine]:
    """Write one HandoverLine per line of the package as it is at the counter (before any split). Not committed."""
    by_item = {r.item.order_item: r for r in refusals}
    lines = []
    for item in package.items:
        refusal = by_item.get(item.order_item)
        refused = refusal.quantity if refusal else 0
        line = HandoverLine(package_id=package.id, order_item=item.order_item, sku=item.sku, name=item.name,
                            quantity=item.quantity, delivered=item.quantity - refused, refused=refused,
                            reason=refusal.reason if refusal else "", refund_package_id=refund_package.id,
                            user_id=user_id)
        session.add(line)
        lines.append(line)
    session.flush()
    return lines


def split_refused(session: Session, package: Package, refusals: list[Refusal]) -> Package:
    """Move the refused units to a new refund package at the counter (Ready for Customer Pickup); not committed.

    A wholly refused line moves as it is; a partly refused one keeps the delivered units and the new package
    gets a line with the refused ones. The new package is flushed so that it has an id.
    """
    taken = session.scalar(select(func.count(Package.id)).where(
        Package.number.like(f"{package.number}{SPLIT_SUFFIX}%"))) or 0
    refund = Package(number=f"{package.number[:34]}{SPLIT_SUFFIX}{taken + 1}", order_number=package.order_number,
                     stock_location_id=package.stock_location_id, customer_id=package.customer_id,
                     state=package.state, delivery_type=package.delivery_type,
                     delivery_from_store=package.delivery_from_store)
    session.add(refund)
    for refusal in refusals:
        item = refusal.item
        if refusal.quantity == item.quantity:
            item.package = refund
        else:
            item.quantity -= refusal.quantity
            refund.items.append(PackageItem(order_item=item.order_item, sku=item.sku, name=item.name,
                                            barcode=item.barcode, quantity=refusal.quantity))
    session.flush()
    session.refresh(package, ["items"])
    package.item_count = len(package.items)
    refund.item_count = len(refund.items)
    session.flush()
    return refund


def lines_of_refund(session: Session, refund_package_id: int) -> list[HandoverLine]:
    """The refused lines that went to a refund package (empty for a package no handover split off)."""
    return list(session.scalars(select(HandoverLine).where(HandoverLine.refund_package_id == refund_package_id,
                                                           HandoverLine.refused > 0)
                                .order_by(HandoverLine.id)))


def lines_of(session: Session, package_id: int) -> list[HandoverLine]:
    """The handover lines of a package at the counter, in line order."""
    return list(session.scalars(select(HandoverLine).where(HandoverLine.package_id == package_id)
                                .order_by(HandoverLine.id)))


def summary(lines: list[HandoverLine], *, refused_only: bool = False) -> str:
    """Lines in words for the audit row: "Delivered: Shirt ×1. Refused: Belt ×1 (Damaged)."."""
    delivered = [f"{line.name} ×{line.delivered}" for line in lines if line.delivered and not refused_only]
    refused = [f"{line.name} ×{line.refused} ({reason_label(line.reason)})" for line in lines if line.refused]
    parts = []
    if delivered:
        parts.append(_("Delivered: %(items)s.", items=", ".join(delivered)))
    if refused:
        parts.append(_("Refused: %(items)s.", items=", ".join(refused)))
    return " ".join(parts)


@dataclass
class HandoverRecord:
    """What a package's page says about a handover with refusals: its lines and where the refused items went,
    or, for a package split off, the package it came from."""

    lines: list[HandoverLine]
    refund_packages: list[Package]
    split_from: Package | None


def handover_record(session: Session, package: Package) -> HandoverRecord | None:
    """The handover record of a package, or None when no handover with refusals touched it."""
    lines = lines_of(session, package.id)
    refund_ids = sorted({line.refund_package_id for line in lines
                         if line.refund_package_id is not None and line.refund_package_id != package.id})
    refunds = list(session.scalars(select(Package).where(Package.id.in_(refund_ids)).order_by(Package.id))) \
        if refund_ids else []
    origin = session.scalar(select(HandoverLine.package_id).where(HandoverLine.refund_package_id == package.id,
                                                                  HandoverLine.package_id != package.id).limit(1))
    split_from = session.get(Package, origin) if origin is not None else None
    if not lines and split_from is None:
        return None
    return HandoverRecord(lines=lines, refund_packages=refunds, split_from=split_from)
