"""Partial pickup: hand a package over while the customer refuses some of its items, in one transaction.

hand_over() checks the code with the normal delivery command (SELF_SERVICE_PACKAGE_DELIVERY_COMMAND), splits
the refused units into a refund package (handover_lines.split_refused), records every line, delivers the
package with what the customer took and runs Package Packed for Refund on the refund package: two commands
through the engine's two halves (commands.checked_command / apply_command), each with its audit row and
events, committed together. A wrong code changes nothing but the counted try. When every unit is refused
there is nothing to deliver: the package itself is refused to Packed for Refund, which the caller must
confirm (confirm_full).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from portal.errors import CommandRejected, ConcurrentChange, DomainError, InvalidOtp
from portal.outbox import service as outbox
from portal.packages import commands, handover_lines
from portal.packages.events import package_payload
from portal.packages.handover_lines import HandoverLine
from portal.packages.models import Package, Transition
from portal.packages.states import State
from portal.webhooks import catalogue

log = logging.getLogger(__name__)

DELIVERY_CODE = "SELF_SERVICE_PACKAGE_DELIVERY_COMMAND"
REFUND_CODE = "PACKAGE_PACKED_FOR_REFUND"


class FullRefusalUnconfirmed(CommandRejected):
    """Every item is refused: nothing is delivered, and the package goes to Packed for Refund once confirmed."""

    code = "full_refusal_unconfirmed"


@dataclass
class HandoverResult:
    """What a handover with refusals did."""

    package: Package
    delivered: bool  # False: every item was refused (the package went to Packed for Refund)
    refund_package: Package | None  # the split-off package (or the package itself when all was refused)
    lines: list[HandoverLine]
    message: str
    sms_ids: list[int] = field(default_factory=list)


def counter_transition(session: Session, command_code: str) -> Transition:
    """The active command of this code that starts at the counter (Ready for Customer Pickup)."""
    transition = session.scalar(
        select(Transition).where(Transition.command_code == command_code,
                                 Transition.source_state == State.READY_FOR_CUSTOMER_PICKUP,
                                 Transition.is_active.is_(True))
        .order_by(Transition.position, Transition.id).limit(1))
    if transition is None:
        raise CommandRejected(_("No active command %(code)s starts from Ready for Customer Pickup.",
                                code=command_code))
    return transition


def refuse_all(session: Session, package_id: int, *, code: object, refused: object, user_id: int | None,
               store_ids: list[int] | None, expected_version: int | None = None) -> HandoverResult:
    """The customer refuses every item: Package Packed for Refund on the package itself (code checked)."""
    transition = counter_transition(session, REFUND_CODE)
    result = commands.run_command(session, package_id, transition_id=transition.id,
                                  params={"otp": code, "refused": refused}, user_id=user_id, store_ids=store_ids,
                                  expected_version=expected_version)
    return HandoverResult(package=result.package, delivered=False, refund_package=result.package,
                          lines=handover_lines.lines_of(session, package_id), message=result.message,
                          sms_ids=result.sms_ids)


def hand_over(session: Session, package_id: int, *, code: object, refused: object, user_id: int | None,
              store_ids: list[int] | None, visibility: str | None = None, expected_version: int | None = None,
              confirm_full: bool = False) -> HandoverResult:
    """Deliver the package except the refused lines ([{order_item, quantity?, reason}]), which go for refund.

    With nothing refused it is the plain delivery. Raises what run_command raises (NotFound, ValidationFailed
    naming "refused", InvalidOtp, RateLimited, ConcurrentChange, CommandRejected), and FullRefusalUnconfirmed
    when every unit is refused and confirm_full is false; on any of them nothing changed (a wrong code only
    counts its try).
    """
    try:
        delivery = counter_transition(session, DELIVERY_CODE)
        package, transition, impl = commands.checked_command(
            session, package_id, transition=delivery, store_ids=store_ids, visibility=visibility,
            expected_version=expected_version)
        refusals = handover_lines.parse_refused(refused, package)
    except DomainError:
        session.rollback()
        raise
    if not refusals:
        session.rollback()
        result = commands.run_command(session, package_id, transition_id=delivery.id, params={"otp": code},
                                      user_id=user_id, store_ids=store_ids, visibility=visibility,
                                      expected_version=expected_version)
        return HandoverResult(package=result.package, delivered=True, refund_package=None, lines=[],
                              message=result.message, sms_ids=result.sms_ids)
    if handover_lines.refuses_everything(package, refusals):
        session.rollback()
        if not confirm_full:
            raise FullRefusalUnconfirmed(
                _("Every item is refused: nothing is handed over and the package goes to Packed for Refund. "
                  "Confirm the full refusal."), field="confirm_full")
        return refuse_all(session, package_id, code=code, refused=refused, user_id=user_id, store_ids=store_ids,
                          expected_version=expected_version)
    return _deliver_the_rest(session, package, transition, impl, refusals, code=code, user_id=user_id)


@dataclass
class Step:
    """One command a partial handover ran: its context and what apply_command wrote."""

    ctx: commands.CommandContext
    from_state: int
    to_state: int
    raised: list[outbox.NewEvent]


def apply_partial(session: Session, package: Package, transition: Transition, impl: commands.Handler,
                  refusals: list[handover_lines.Refusal], *, code: object, user_id: int | None,
                  dry_run: bool = False) -> tuple[list[Step], list[HandoverLine]]:
    """On the locked package: check the code, record the lines, split the refused units off, deliver the package
    and refund the split one, in the caller's transaction (not committed). Raises InvalidOtp before any write.

    dry_run checks only the code's shape (portal.packages.dry_run previews a partial handover with it).
    """
    ctx = commands.CommandContext(session=session, package=package, transition=transition, params={"otp": code},
                                  user_id=user_id, destination=transition.destination_state, dry_run=dry_run)
    impl.run(ctx)
    lines = handover_lines.record(session, package, refusals, refund_package=package, user_id=user_id)
    refund = handover_lines.split_refused(session, package, refusals)
    for line in lines:
        line.refund_package_id = refund.id if line.refused else None
    session.flush()
    ctx.note = f"{ctx.note} {handover_lines.summary(lines)} " + _(
        "The refused items went to package %(number)s.", number=refund.number)
    ctx.event_details["handover"] = {"lines": [line.as_json() for line in lines],
                                     "refund_package": {"id": refund.id, "number": refund.number}}
    ctx.toast = _("Package %(number)s delivered; %(count)s refused item(s) went to %(refund)s for refund.",
                  number=package.number, count=sum(line.refused for line in lines), refund=refund.number)
    delivered = Step(ctx, *commands.apply_command(ctx))
    return [delivered, refund_command(session, refund, user_id, dry_run=dry_run)], lines


def _deliver_the_rest(session: Session, package: Package, transition: Transition, impl: commands.Handler,
                      refusals: list[handover_lines.Refusal], *, code: object, user_id: int | None) -> HandoverResult:
    """Run apply_partial and commit; a wrong code commits only its counted try."""
    try:
        try:
            steps, lines = apply_partial(session, package, transition, impl, refusals, code=code, user_id=user_id)
        except InvalidOtp:
            session.commit()  # keep the counted try; the package itself was not changed
            raise
        session.commit()
    except DomainError:
        session.rollback()
        raise
    except (OperationalError, IntegrityError) as exc:
        session.rollback()
        log.warning("partial handover of package %s hit a concurrent change: %s", package.id,
                    exc.__class__.__name__)
        raise ConcurrentChange(_("Someone else changed this package at the same moment. Please try again.")) from exc
    session.refresh(package)
    sms_ids = [sms_id for step in steps for sms_id in step.ctx.sms_ids]
    outbox.deliver_after_commit(session, sms_ids)
    return HandoverResult(package=package, delivered=True, refund_package=steps[1].ctx.package, lines=lines,
                          message=steps[0].ctx.toast, sms_ids=sms_ids)


def refund_command(session: Session, refund: Package, user_id: int | None, *, dry_run: bool = False) -> Step:
    """Package Packed for Refund on a split refund package, with its package.created, in the caller's transaction."""
    transition = counter_transition(session, REFUND_CODE)
    locked, transition, impl = commands.checked_command(session, refund.id, transition=transition, store_ids=None)
    ctx = commands.CommandContext(session=session, package=locked, transition=transition, params={},
                                  user_id=user_id, destination=transition.destination_state, dry_run=dry_run)
    ctx.events.append(outbox.NewEvent(catalogue.PACKAGE_CREATED, package_payload(locked), package_id=locked.id))
    impl.run(ctx)
    return Step(ctx, *commands.apply_command(ctx))
