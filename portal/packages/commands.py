"""The command engine: the one door through which a package changes state.

Which states a command connects is data (Transition rows). What it does is code, chosen by its
command code from HANDLERS. run_command() locks the package row, checks, runs the handler, writes
the new state, the audit row and any outbox messages in one transaction, and sends SMS only
after that transaction has committed.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import SupportsInt, cast

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Table, bindparam, event, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, make_transient_to_detached

from portal.db_types import plain_int, rowcount, utcnow
from portal.errors import CommandRejected, ConcurrentChange, DomainError, InvalidOtp, ValidationFailed
from portal.i18n import N_, in_customer_language
from portal.otp import service as otp
from portal.outbox import service as outbox
from portal.packages import customer_link, delegate, handover_lines, hold, override, quota, shelf, shipments
from portal.packages.events import (
    READY_FOR_PICKUP_EVENT,
    delivered_with_override,
    package_payload,
    transition_events,
)
from portal.packages.locks import lock_package
from portal.packages.models import DenialReason, Package, PackageItem, PackageLog, Transition
from portal.packages.states import State, state_info
from portal.settings import service as settings
from portal.webhooks import events

log = logging.getLogger(__name__)


@dataclass
class CommandContext:
    """What a handler sees: the locked package, the transition, cleaned parameters and the actor."""

    session: Session
    package: Package
    transition: Transition
    params: dict
    user_id: int | None
    destination: int | None = None
    note: str = ""
    sms_ids: list[int] = field(default_factory=list)
    toast: str = ""
    # The manager who authorised the command (a manager override); written on the audit row.
    authorised_by: int | None = None
    # Events the handler raises; written with the transition's own events, in the command's transaction.
    events: list[outbox.NewEvent] = field(default_factory=list)
    # A dry run (portal.packages.dry_run): check what can be checked without spending anything (no code tries).
    dry_run: bool = False
    # Values a preview must mask wherever they appear (the pickup code in the SMS and the event).
    secrets: list[str] = field(default_factory=list)
    # Shipments recorded by the command, made at the cargo company after the commit (portal.packages.shipments).
    shipment_ids: list[int] = field(default_factory=list)
    # Added to the payloads of the transition's own events (a handover's lines, the delivery's collected_by).
    event_details: dict = field(default_factory=dict)


@dataclass
class CommandResult:
    """The outcome of a command that ran."""

    package: Package
    transition: Transition | None  # None for resending a pickup code, which changes no state
    from_state: int
    to_state: int
    sms_ids: list[int]
    toast: str = ""  # the handler's own message; without one, message says "<number>: <command> done."
    number: str = ""  # the package's number and the command's name, read while they were loaded
    command_name: str = ""

    @property
    def message(self) -> str:
        """What the screens show: translated when read, so a caller that shows none (the API) pays nothing."""
        return self.toast or _("Package %(number)s: %(name)s done.", number=self.number, name=self.command_name)


class Handler:
    """Default command work: check nothing, move to the transition's destination."""

    description = N_("Moves the package to the destination state.")

    def applies_to(self, package: Package) -> str | None:
        """Return why the command cannot run on this package, or None when it can."""
        return None

    def run(self, ctx: CommandContext) -> None:
        """Validate ctx.params and do the command's work; may set ctx.destination and ctx.note."""


HANDLERS: dict[str, Handler] = {}


def handler(code: str):
    """Register a Handler class under a command code."""
    def register(cls):
        """Instantiate and store the handler."""
        HANDLERS[code] = cls()
        return cls
    return register


def command_codes() -> list[str]:
    """Every command code that has an implementation."""
    return sorted(HANDLERS)


@handler("DEALLOCATE_PACKAGE_RESERVATIONS")
class DeallocateReservations(Handler):
    """Releases stock reservations and starts preparing."""

    description = N_("Starts preparing the package and releases its reservations.")


@handler("COMPLETE_PACKAGING_WITHOUT_SHIPMENT")
class CompletePackagingWithoutShipment(Handler):
    """Packs the package without creating a shipment (click & collect)."""

    description = N_("Marks every item packed; no shipment is created.")


def parse_barcodes(raw: object) -> dict[int, str]:
    """Turn the API's barcodes ({order_item, barcode} or a list of them) into {order_item: barcode}."""
    if raw in (None, "", [], {}):
        raise ValidationFailed(_("Scan the barcode of every item."), field="barcodes")
    entries = [raw] if isinstance(raw, dict) else raw
    if not isinstance(entries, list):
        raise ValidationFailed(_("barcodes must be an object or a list of {order_item, barcode}."), field="barcodes")
    result: dict[int, str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or "order_item" not in entry or "barcode" not in entry:
            raise ValidationFailed(_("Each barcode needs order_item and barcode."), field="barcodes")
        try:
            order_item = int(entry["order_item"])
        except (TypeError, ValueError):
            raise ValidationFailed(_("order_item must be a number."), field="barcodes") from None
        result[order_item] = str(entry["barcode"]).strip()
    return result


@handler("COMPLETE_PACKAGING")
class CompletePackagingWithShipment(Handler):
    """Packs the package after every item's barcode was scanned and matched."""

    description = N_("Checks that every item's barcode was scanned, then marks the package packed.")

    def run(self, ctx: CommandContext) -> None:
        """Compare the given barcodes with the package's items."""
        given = parse_barcodes(ctx.params.get("barcodes"))
        items = {item.order_item: item for item in ctx.package.items}
        unknown = sorted(set(given) - set(items))
        if unknown:
            raise ValidationFailed(_("Order item %(item)s is not in this package.", item=unknown[0]), field="barcodes")
        missing = [items[k] for k in sorted(set(items) - set(given))]
        if missing:
            names = ", ".join(item.name for item in missing[:3])
            raise ValidationFailed(_("Scan every item; missing: %(names)s.", names=names), field="barcodes",
                                   details={"missing": [i.order_item for i in missing]})
        wrong = [items[k] for k, barcode in given.items() if items[k].barcode != barcode]
        if wrong:
            raise ValidationFailed(_("Barcode does not match %(name)s.", name=wrong[0].name), field="barcodes",
                                   details={"mismatched": [i.order_item for i in wrong]})
        if "ticked_by_hand" in ctx.params:
            ctx.note = packing_note(items, ctx.params.get("ticked_by_hand"))
        plan_shipment(ctx)


def plan_shipment(ctx: CommandContext) -> None:
    """Record the cargo package's shipment in the command's transaction; it is made after the commit."""
    shipment = shipments.plan_shipment(ctx.session, ctx.package, ctx.params)
    if shipment is not None:
        ctx.shipment_ids.append(shipment.id)
        ctx.note = " ".join(part for part in (ctx.note, shipments.planned_note(shipment)) if part)


def packing_note(items: dict[int, PackageItem], raw: object) -> str:
    """The audit note of a package packed on the packing screen: which lines were scanned, which ticked by hand.

    raw maps order_item -> units ticked by hand; the rest of each line's units were scanned.
    """
    by_hand: dict[int, int] = {}
    if isinstance(raw, dict):
        for key, value in raw.items():
            order_item, count = plain_int(key), plain_int(value)
            if order_item in items and count:
                by_hand[order_item] = min(count, items[order_item].quantity)

    def units(item: PackageItem, count: int) -> str:
        """An item's name, with the unit count when it is not the whole of a one-unit line."""
        return item.name if item.quantity == 1 else f"{item.name} ×{count}"

    scanned = [units(item, item.quantity - by_hand.get(key, 0)) for key, item in items.items()
               if item.quantity - by_hand.get(key, 0) > 0]
    manual = [units(items[key], count) for key, count in by_hand.items()]
    note = _("Scanned: %(items)s.", items=", ".join(scanned)) if scanned else ""
    if manual:
        note = (note + " " if note else "") + _("Ticked by hand: %(items)s.", items=", ".join(manual))
    return note


@handler("READY_FOR_PICKUP")
class ReadyForPickup(Handler):
    """Issues the pickup code, texts it to the customer and raises the ready-for-pickup event."""

    description = N_("Generates the customer's pickup code, sends it by SMS and raises the ready-for-pickup event.")

    def applies_to(self, package: Package) -> str | None:
        """Only click & collect packages are collected at the counter."""
        if not package.is_click_and_collect:
            return _("Only click & collect packages (in store, delivery from store) can be made ready for pickup.")
        return None

    def run(self, ctx: CommandContext) -> None:
        """Issue the code (when OTP is on), queue the SMS (unless an Extension application sends it) and the event."""
        package = ctx.package
        now = utcnow()
        until = hold.start_hold(package, now)
        code = (otp.issue_code(ctx.session, package.id, ctx.user_id, expires_at=until, now=now)
                if settings.is_otp_enabled(ctx.session) else None)
        if code:
            ctx.secrets += [code, customer_link.make_token(package.id, code)]  # a dry run masks the link too
        payload = package_payload(package, State.READY_FOR_CUSTOMER_PICKUP)
        if settings.pickup_code_delivery(ctx.session) == settings.EXTENSION_APP:
            # The vendor's mode: the Extension application texts the customer, so the event carries the
            # code (encrypted in the outbox, wiped once delivered) and the portal sends no SMS.
            ctx.events.append(outbox.NewEvent(READY_FOR_PICKUP_EVENT, payload, package_id=package.id,
                                              secret_payload=customer_link.secret_payload(package.id, code)))
            ctx.toast = _("Package %(number)s is ready for pickup; the Extension application texts the customer.",
                          number=package.number)
            return
        body = in_customer_language(package, lambda: customer_link.with_link(otp.pickup_sms(
            package.order_number, package.stock_location.name, code, hold.pick_up_by_text(package)), package, code))
        sms = outbox.enqueue_sms(ctx.session, to=package.customer.phone, body=body, package_id=package.id,
                                 purpose="pickup_code")
        ctx.sms_ids.append(sms.id)
        ctx.events.append(outbox.NewEvent(READY_FOR_PICKUP_EVENT, payload, package_id=package.id))
        ctx.toast = _("Package %(number)s is ready for pickup; the customer was sent a code.", number=package.number)


@handler("SELF_SERVICE_PACKAGE_DELIVERY_COMMAND")
class SelfServicePackageDelivery(Handler):
    """Hands the package to the customer, checking their code when IS_OTP_ENABLED is true."""

    description = N_("Checks the customer's pickup code (when OTP is enabled) and marks the package delivered.")

    def run(self, ctx: CommandContext) -> None:
        """Verify the code, or the manager override given instead of it."""
        if ctx.params.get("override") is not None:
            self.run_override(ctx)
            return
        if not self.check_code(ctx):
            ctx.note = _("Delivered without a code (IS_OTP_ENABLED is false).")
        ctx.toast = ctx.toast or _("Package %(number)s delivered.", number=ctx.package.number)

    @staticmethod
    def check_code(ctx: CommandContext) -> bool:
        """Verify the customer's or their delegate's code when IS_OTP_ENABLED is true; False when it is off.

        A dry run checks the code's shape only (no try is spent). Sets the audit note, and when a delegate's
        code matched, records the collection, names the delegate in the events (collected_by) and the toast.
        """
        if not settings.is_otp_enabled(ctx.session):
            return False
        code = ctx.params.get("otp", ctx.params.get("code"))
        if ctx.dry_run:  # a dry run is no free guess: only the code's shape is checked, no try is spent
            otp.clean_code(code)
            ctx.note = _("Pickup code verified.")
            return True
        collector = delegate.record_collection(ctx.session, otp.verify_code(ctx.session, ctx.package.id, code,
                                                                            ctx.user_id))
        ctx.note = delegate.collection_note(collector) if collector else _("Pickup code verified.")
        ctx.event_details["collected_by"] = delegate.collected_by(collector)
        if collector:
            ctx.toast = _("Package %(number)s delivered to %(name)s (delegate).", number=ctx.package.number,
                          name=collector.name)
        return True

    def run_override(self, ctx: CommandContext) -> None:
        """Hand over without a code: a manager authorised it; raise the override event and text the customer."""
        package = ctx.package
        authorisation = override.authorise(ctx.session, package, ctx.params["override"], ctx.user_id)
        if package.state != State.READY_FOR_CUSTOMER_PICKUP:  # reloaded: the manager's login committed
            raise ConcurrentChange(_("Someone else changed this package just now. The page shows it as it is now."))
        ctx.authorised_by = authorisation.manager.id
        ctx.note = override.audit_note(authorisation)
        ctx.events.append(delivered_with_override(package, reason=authorisation.reason, note=authorisation.note,
                                                  performed_by=ctx.user_id, authorised_by=authorisation.manager))
        sms = outbox.enqueue_sms(ctx.session, to=package.customer.phone,
                                 body=in_customer_language(package, lambda: override.notice_sms(
                                     package.order_number, package.stock_location.name)),
                                 package_id=package.id, purpose="override_notice")
        ctx.sms_ids.append(sms.id)
        ctx.toast = _("Package %(number)s delivered without a code (manager override).", number=package.number)


@handler("BLOCK_PACKAGE_FOR_ACTION")
class BlockPackage(Handler):
    """Blocks the package and remembers the state to return to."""

    description = N_("Blocks the package; unblock returns it to the state it had.")

    def run(self, ctx: CommandContext) -> None:
        """Remember the current state."""
        ctx.package.state_before_block = ctx.package.state
        ctx.note = str(ctx.params.get("reason") or "")[:500]


@handler("UNBLOCK_PACKAGE_FOR_ACTION")
class UnblockPackage(Handler):
    """Returns a blocked package to the state it had before the block."""

    description = N_("Returns the package to the state it had before it was blocked.")

    def run(self, ctx: CommandContext) -> None:
        """Restore the remembered state."""
        previous = ctx.package.state_before_block
        if ctx.transition.destination_state is not None:
            ctx.destination = ctx.transition.destination_state
        elif previous is None:
            raise CommandRejected(_("This package has no state to return to."))
        else:
            ctx.destination = previous
        ctx.package.state_before_block = None


@handler("PACKAGE_REFUSE_WITH_DENIAL_REASON")
class RefuseWithDenialReason(Handler):
    """Refuses the package with one of the active denial reasons."""

    description = N_("Refuses the package with a denial reason; it then needs rescheduling.")

    def run(self, ctx: CommandContext) -> None:
        """Check and record the denial reason."""
        reason_id = plain_int(ctx.params.get("denial_reason"))  # None for junk, and for ids no row can have
        reason = ctx.session.get(DenialReason, reason_id) if reason_id is not None else None
        if reason is None or not reason.is_active:
            raise ValidationFailed(_("Choose a denial reason."), field="denial_reason")
        ctx.package.denial_reason_id = reason.id
        ctx.note = reason.title
        missing = ctx.params.get("not_found")
        if isinstance(missing, list):
            names = [item.name for item in ctx.package.items if item.order_item in missing]
            if names:
                ctx.note = _("%(reason)s: %(items)s", reason=reason.title, items=", ".join(names))


@handler("SHIP_PACKAGE")
class ShipPackage(Handler):
    """Hands the package to the cargo company."""

    description = N_("Marks the package shipped; a tracking number may be given.")

    def applies_to(self, package: Package) -> str | None:
        """Click & collect packages are not shipped."""
        if package.is_click_and_collect:
            return _("Click & collect packages are handed over in store, not shipped.")
        return None

    def run(self, ctx: CommandContext) -> None:
        """Record the tracking number, if any."""
        tracking = str(ctx.params.get("tracking_number") or "").strip()
        ctx.note = _("Tracking number %(number)s", number=tracking) if tracking else ""
        plan_shipment(ctx)


@handler("UPDATE_SHIPMENT_STATUS")
class UpdateShipmentStatus(Handler):
    """Records what the cargo company reported."""

    description = N_("Moves the package along the shipment's status as reported by the cargo company.")

    def run(self, ctx: CommandContext) -> None:
        """Record the tracking number the report is about, if any (the tracking poll gives it)."""
        tracking = str(ctx.params.get("tracking_number") or "").strip()
        ctx.note = _("Tracking number %(number)s", number=tracking) if tracking else ""


@handler("CANCEL_PACKAGE")
class CancelPackage(Handler):
    """Cancels a package that cannot be fulfilled; a reason may be given."""

    description = N_("Cancels the package.")

    def run(self, ctx: CommandContext) -> None:
        """Record the reason, if any."""
        ctx.note = str(ctx.params.get("reason") or "")[:500]


@handler("RESCHEDULE_PACKAGE")
class ReschedulePackage(Handler):
    """Sends a refused package back to Waiting so it can be planned again; the denial reason is cleared."""

    description = N_("Sends the package back to Waiting and clears its denial reason.")

    def run(self, ctx: CommandContext) -> None:
        """Clear the denial reason."""
        ctx.package.denial_reason_id = None


@handler("PACKAGE_PACKED_FOR_REFUND")
class PackedForRefund(Handler):
    """The vendor's Package Packed for Refund; at the counter, the items the customer refused (handover_lines).

    A refund package split off at a handover carries the lines recorded there; the package itself, when the
    customer refuses every item, needs the pickup code (like the delivery) and a reason for the lines.
    """

    description = N_("Moves the package to Packed for Refund; at the pickup counter, the customer's code and the "
                     "refused items are checked and recorded.")

    def run(self, ctx: CommandContext) -> None:
        """Check and record the refused lines when the package is at the counter; otherwise note the reason."""
        package = ctx.package
        if package.state != State.READY_FOR_CUSTOMER_PICKUP:
            ctx.note = str(ctx.params.get("reason") or "")[:500]
            return
        lines = handover_lines.lines_of_refund(ctx.session, package.id)
        split_from = ctx.session.get(Package, lines[0].package_id) if lines else None
        if split_from is None or split_from.id == package.id:
            raw = ctx.params.get("refused")
            refusals = (handover_lines.parse_refused(raw, package) if raw
                        else handover_lines.all_refused(package, str(ctx.params.get("reason") or "")))
            if not handover_lines.refuses_everything(package, refusals):
                raise ValidationFailed(_("Not every item is refused: hand the rest over with the delivery."),
                                       field="refused")
            SelfServicePackageDelivery.check_code(ctx)
            lines = handover_lines.record(ctx.session, package, refusals, refund_package=package,
                                          user_id=ctx.user_id)
            ctx.note = _("Every item refused at the handover. %(lines)s", lines=handover_lines.summary(lines))
            ctx.toast = _("Package %(number)s refused by the customer: Packed for Refund.", number=package.number)
        else:
            ctx.note = _("Refused at the handover of package %(number)s. %(lines)s", number=split_from.number,
                         lines=handover_lines.summary(lines, refused_only=True))
        ctx.event_details = {"refund": {
            "lines": [line.as_json() for line in lines if line.refused],
            "split_from": {"id": split_from.id, "number": split_from.number}
            if split_from is not None and split_from.id != package.id else None}}


# Transitions by slug, per app and process: the command API names commands by slug, and the transitions change
# only when an admin edits them. Any flush of a Transition in this process clears every entry (see
# _forget_transitions); other processes see an edit within TRANSITION_CACHE_SECONDS.
TRANSITION_CACHE_SECONDS = 5.0
_TRANSITIONS: dict[tuple[int, str], tuple[float, int, Transition]] = {}
_TRANSITIONS_GENERATION = [0]


def transition_by_slug(session: Session, slug: str) -> Transition | None:
    """The transition with this slug, from the per-process cache when fresh (merged into the session, no query)."""
    key = (id(current_app._get_current_object()), slug)  # type: ignore[attr-defined]
    now = time.monotonic()
    found = _TRANSITIONS.get(key)
    if found is not None and found[1] == _TRANSITIONS_GENERATION[0] and now - found[0] < TRANSITION_CACHE_SECONDS:
        return session.merge(found[2], load=False)
    generation = _TRANSITIONS_GENERATION[0]
    transition = session.scalar(select(Transition).where(Transition.slug == slug))
    if transition is not None and transition not in session.dirty:
        _TRANSITIONS[key] = (now, generation, _snapshot(transition))
    return transition


# Every transition, in the editor's order, per app and process (the package page's commands and the history's
# command names), under the same rules as _TRANSITIONS.
_ALL_TRANSITIONS: dict[int, tuple[float, int, list[Transition]]] = {}


def _snapshot(transition: Transition) -> Transition:
    """A detached copy of a loaded transition's columns, to keep across sessions."""
    snapshot = Transition(**{column.key: getattr(transition, column.key) for column in Transition.__table__.columns})
    make_transient_to_detached(snapshot)
    return snapshot


def _every_transition(session: Session) -> tuple[list[Transition], bool]:
    """Every transition in position order, and whether they are cached copies (detached: merge before use) rather
    than this session's own rows."""
    key = id(current_app._get_current_object())  # type: ignore[attr-defined]
    now = time.monotonic()
    found = _ALL_TRANSITIONS.get(key)
    if found is not None and found[1] == _TRANSITIONS_GENERATION[0] and now - found[0] < TRANSITION_CACHE_SECONDS:
        return found[2], True
    generation = _TRANSITIONS_GENERATION[0]
    rows = list(session.scalars(select(Transition).order_by(Transition.position, Transition.id)))
    if not any(row in session.dirty or row in session.new for row in rows):
        _ALL_TRANSITIONS[key] = (now, generation, [_snapshot(row) for row in rows])
    return rows, False


def command_names(session: Session) -> dict[str, str]:
    """Every command's name by slug (the package history shows names; its rows keep slugs)."""
    return {transition.slug: transition.name for transition in _every_transition(session)[0]}


@event.listens_for(Session, "before_flush")
def _forget_transitions(session: Session, flush_context, instances) -> None:
    """A transition is being added, changed or deleted in this process: drop every cached one."""
    if any(isinstance(obj, Transition) for obj in (*session.new, *session.dirty, *session.deleted)):
        _TRANSITIONS_GENERATION[0] += 1
        _TRANSITIONS.clear()
        _ALL_TRANSITIONS.clear()


def find_transition(session: Session, transition_id: object = None, slug: object = None) -> Transition:
    """The transition named by id or slug (both must agree when both are given). Raises ValidationFailed."""
    if transition_id in (None, "") and not slug:
        raise ValidationFailed(_("Give the command's transition id or slug."), field="transition")
    transition = None
    if transition_id not in (None, ""):
        try:
            if not isinstance(transition_id, str | SupportsInt):
                raise TypeError(transition_id)
            transition = session.get(Transition, int(transition_id))
        except (TypeError, ValueError):
            raise ValidationFailed(_("transition must be a number."), field="transition") from None
        if transition is None:
            raise ValidationFailed(_("No command with transition id %(id)s.", id=transition_id), field="transition")
        if slug and transition.slug != slug:
            raise ValidationFailed(_("transition and slug name different commands."), field="slug")
    else:
        transition = transition_by_slug(session, str(slug))
        if transition is None:
            raise ValidationFailed(_("No command with slug %(slug)r.", slug=slug), field="slug")
    if not transition.is_active:
        raise ValidationFailed(_("The command %(name)r is switched off.", name=transition.name), field="transition")
    return transition


def available_transitions(session: Session, package: Package, visibility: str | None) -> list[Transition]:
    """Active commands that start from the package's state, are visible there and apply to it (from the
    per-process cache of transitions when fresh: no query)."""
    rows, cached = _every_transition(session)
    result = []
    for transition in rows:
        if transition.source_state != package.state or not transition.is_active:
            continue
        if visibility and visibility not in (transition.visibility or []):
            continue
        impl = HANDLERS.get(transition.command_code)
        if impl is None or impl.applies_to(package) is not None:
            continue
        result.append(session.merge(transition, load=False) if cached else transition)
    return result


def checked_command(
    session: Session, package_id: int, *, transition_id: object = None, slug: object = None,
    transition: Transition | None = None, store_ids: list[int] | None, visibility: str | None = None,
    expected_version: int | None = None,
) -> tuple[Package, Transition, Handler]:
    """Lock the package and check that the command may run on it; the first half of run_command.

    transition, when given, is used as is (the transitions editor previews an unsaved command);
    otherwise it is found by transition_id or slug. Raises like run_command; commits nothing.
    """
    package = lock_package(session, package_id, store_ids)
    if transition is None:
        transition = find_transition(session, transition_id, slug)
    if visibility and visibility not in (transition.visibility or []):
        raise CommandRejected(_("%(name)s is not available here.", name=transition.name))
    if expected_version is not None and package.version != expected_version:
        raise ConcurrentChange(_("Someone else changed this package just now. The page shows it as it is now."))
    if transition.source_state != package.state:
        raise CommandRejected(
            _("%(name)s runs on %(source)s packages; this package is %(state)s.", name=transition.name,
              source=_(state_info(transition.source_state).label), state=_(package.state_info.label)))
    impl = HANDLERS.get(transition.command_code)
    if impl is None:
        raise CommandRejected(_("No implementation for command code %(code)s.", code=transition.command_code))
    reason = impl.applies_to(package)
    if reason:
        raise CommandRejected(reason)
    return package, transition, impl


# Declarative types __table__ as any FromClause; a mapped class's is a Table.
_PACKAGES, _LOGS = cast(Table, Package.__table__), cast(Table, PackageLog.__table__)
_AUDIT_COLUMNS = ("package_id", "from_state", "to_state", "transition_id", "command", "user_id", "authorised_by_id",
                  "note", "created_at")
# The command's own writes as Core statements built once: no ORM unit of work, no per-command statement building.
# _MOVE moves the package if it is still in the state and version it was read in; _AUDIT writes the audit row.
_MOVE = (update(_PACKAGES)
         .where(_PACKAGES.c.id == bindparam("b_id"), _PACKAGES.c.state == bindparam("b_state"),
                _PACKAGES.c.version == bindparam("b_version"))
         .values(state=bindparam("to_state", type_=_PACKAGES.c.state.type), version=_PACKAGES.c.version + 1,
                 **{name: bindparam(f"v_{name}", type_=_PACKAGES.c[name].type) for name in (
                     "updated_at", "state_before_block", "denial_reason_id", "hold_until", "hold_reminder_sent_at",
                     "hold_expired_at")}))
_AUDIT = insert(_LOGS).values({name: bindparam(f"a_{name}", type_=_LOGS.c[name].type) for name in _AUDIT_COLUMNS})
# PostgreSQL: both in one statement (one round trip); the audit row is written only when the package moved.
_MOVED = _MOVE.returning(_PACKAGES.c.id).cte("moved")
_MOVE_AND_AUDIT = insert(_LOGS).from_select(_AUDIT_COLUMNS, select(
    _MOVED.c.id, *[bindparam(f"a_{name}", type_=_LOGS.c[name].type) for name in _AUDIT_COLUMNS[1:]])
).add_cte(_MOVED).execution_options(preserve_rowcount=True)  # an INSERT's rowcount is kept only when asked for


def _move_and_audit(session: Session, values: dict) -> bool:
    """Move the package and write its audit row (values: the statements' parameters); False when it had changed."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return rowcount(connection.execute(_MOVE_AND_AUDIT, values)) == 1
    if rowcount(connection.execute(_MOVE, values)) != 1:
        return False
    connection.execute(_AUDIT, values)
    return True


def apply_command(ctx: CommandContext) -> tuple[int, int, list[outbox.NewEvent]]:
    """Write what a handler decided: the new state, the quota, the audit row and the events (not committed).

    The second half of run_command; returns (from_state, to_state, the events written). The package's UPDATE
    and its audit row are Core statements on the session's connection (one on PostgreSQL), after what the handler
    and the shelf release left pending in the session is flushed, so rows keep the order the ORM gave them.
    """
    session, package, transition = ctx.session, ctx.package, ctx.transition
    from_state = package.state
    to_state = ctx.destination if ctx.destination is not None else from_state
    if from_state == State.READY_FOR_CUSTOMER_PICKUP and to_state != from_state:
        shelf.release(session, package, user_id=ctx.user_id)  # leaving the counter frees the shelf slot
        delegate.release(session, package.id)  # and ends a delegate's naming
    quota.adjust(session, package.stock_location_id, quota.change_for(from_state, to_state))
    session.flush()
    now = utcnow()
    moved = _move_and_audit(session, {
        "b_id": package.id, "b_state": from_state, "b_version": package.version, "to_state": to_state,
        "v_updated_at": now, "v_state_before_block": package.state_before_block,
        "v_denial_reason_id": package.denial_reason_id, "v_hold_until": package.hold_until,
        "v_hold_reminder_sent_at": package.hold_reminder_sent_at, "v_hold_expired_at": package.hold_expired_at,
        "a_package_id": package.id, "a_from_state": from_state, "a_to_state": to_state,
        "a_transition_id": transition.id, "a_command": transition.slug, "a_user_id": ctx.user_id,
        "a_authorised_by_id": ctx.authorised_by, "a_note": ctx.note, "a_created_at": now})
    if not moved:
        raise ConcurrentChange(_("Someone else changed this package just now."))
    raised = ctx.events + transition_events(package, transition, from_state, to_state, ctx.event_details)
    events.record_events(session, raised)
    return from_state, to_state, raised



# PostgreSQL's SQLSTATEs for "another transaction got in the way": serialization failure, deadlock, lock not
# available. Any other OperationalError (a dropped connection, a server shutting down) means the database is out.
CONTENTION_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def is_contention(exc: OperationalError | IntegrityError) -> bool:
    """Whether a database error means a concurrent change (409, try again) rather than an outage (503)."""
    if isinstance(exc, IntegrityError):
        return True
    if exc.connection_invalidated:
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in CONTENTION_SQLSTATES
    return "locked" in str(exc.orig).lower()  # SQLite: "database is locked" (or a table is)

def run_command(
    session: Session, package_id: int, *, transition_id: object = None, slug: object = None,
    params: dict | None = None, user_id: int | None, store_ids: list[int] | None,
    visibility: str | None = None, expected_version: int | None = None,
) -> CommandResult:
    """Run a package command in one transaction and send its SMS after commit.

    store_ids limits the packages the actor may touch (None: all). visibility, when given, refuses
    commands not shown there. Raises NotFound, ValidationFailed, CommandRejected, InvalidOtp,
    RateLimited or ConcurrentChange; on any of them the package is unchanged.
    """
    params = dict(params or {})
    try:
        package, transition, impl = checked_command(
            session, package_id, transition_id=transition_id, slug=slug, store_ids=store_ids,
            visibility=visibility, expected_version=expected_version)
        ctx = CommandContext(session=session, package=package, transition=transition, params=params,
                             user_id=user_id, destination=transition.destination_state)
        try:
            impl.run(ctx)
        except InvalidOtp:
            session.commit()  # keep the counted attempt; the package itself was not changed
            raise
        from_state, to_state, _raised = apply_command(ctx)
        # Before the commit, while the package and transition are loaded: read after it they would each cost a query.
        number, command_name = package.number, transition.name
        session.commit()
    except DomainError:
        session.rollback()
        raise
    except (OperationalError, IntegrityError) as exc:
        session.rollback()
        if not is_contention(exc):
            raise  # the database is unreachable (restarting, say): the web layer answers 503
        log.warning("command on package %s hit a concurrent change: %s", package_id, exc.__class__.__name__)
        raise ConcurrentChange(_("Someone else changed this package at the same moment. Please try again.")) from exc
    # The package is not refreshed here: the commit expired it, so a caller that reads it reloads it once.
    outbox.deliver_after_commit(session, ctx.sms_ids)
    shipments.dispatch(ctx.shipment_ids)
    return CommandResult(package=package, transition=transition, from_state=from_state, to_state=to_state,
                         sms_ids=ctx.sms_ids, toast=ctx.toast, number=number, command_name=command_name)


def resend_pickup_code(session: Session, package_id: int, *, user_id: int | None,
                       store_ids: list[int] | None) -> CommandResult:
    """Issue a new pickup code (the old one stops working) and text it. Raises RateLimited past the limit."""
    try:
        package = lock_package(session, package_id, store_ids)
        if package.state != State.READY_FOR_CUSTOMER_PICKUP:
            raise CommandRejected(_("A code can only be sent for packages ready for customer pickup."))
        if not settings.is_otp_enabled(session):
            raise CommandRejected(_("Pickup codes are switched off (IS_OTP_ENABLED is false)."))
        otp.check_resend_allowed(session, package.id)
        until = package.hold_until if package.hold_until is not None and package.hold_until > utcnow() else None
        code = otp.issue_code(session, package.id, user_id, expires_at=until)
        sms_ids = []
        if settings.pickup_code_delivery(session) == settings.EXTENSION_APP:
            # The Extension application texts the customer: it gets the new code in a fresh event.
            events.record_event(session, READY_FOR_PICKUP_EVENT, {**package_payload(package), "resent": True},
                                package_id=package.id, secret_payload=customer_link.secret_payload(package.id, code))
            message = _("A new code for package %(number)s was passed to the Extension application, "
                        "which texts the customer.", number=package.number)
        else:
            body = in_customer_language(package, lambda: customer_link.with_link(otp.pickup_sms(
                package.order_number, package.stock_location.name, code, hold.pick_up_by_text(package)), package,
                code))
            sms_ids.append(outbox.enqueue_sms(session, to=package.customer.phone, body=body, package_id=package.id,
                                              purpose="pickup_code").id)
            message = _("A new code was sent to the customer of package %(number)s.", number=package.number)
        session.add(PackageLog(package_id=package.id, from_state=package.state, to_state=package.state,
                               command="resend-pickup-code", user_id=user_id,
                               note=_("A new pickup code was sent; the previous one no longer works.")))
        session.commit()
    except DomainError:
        session.rollback()
        raise
    except (OperationalError, IntegrityError) as exc:
        session.rollback()
        raise ConcurrentChange(_("Someone else changed this package at the same moment. Please try again.")) from exc
    outbox.deliver_after_commit(session, sms_ids)
    return CommandResult(package=package, transition=None, from_state=package.state, to_state=package.state,
                         sms_ids=sms_ids, toast=message)
