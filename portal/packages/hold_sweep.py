"""The hold sweep: a background run (kind "hold_sweep") over the ready packages, by id, resumable and idempotent.

Each slice reminds the packages near the end of their hold (one SMS each, ever: the reminder column is claimed
by a conditional UPDATE in the slice's transaction, with the outbox row) and marks those past it expired
(portal.packages.hold: its codes are released and its shelf slot freed, audited, whether the expiry command
then runs or is only proposed). The slice commits with the run's cursor (runs.save_progress), so a resumed run neither
redoes nor skips a package. HOLD_POLICY's expiry command then runs on each expired package through the command
door, after the slice's commit; a package it moved is no longer ready, so it never runs twice.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.db_types import rowcount, utcnow
from portal.errors import DomainError
from portal.i18n import in_customer_language
from portal.outbox import service as outbox
from portal.packages import commands, hold, shelf
from portal.packages.models import HoldSweepRun, Package, PackageLog
from portal.packages.states import State
from portal.runs import service as runs

log = logging.getLogger(__name__)

SWEEP_BATCH = 500
KIND = "hold_sweep"


@dataclass
class SliceResult:
    """What one slice of the sweep did, and where the next one starts (None: the end)."""

    checked: int = 0
    reminded: int = 0
    expired: int = 0
    after: int | None = None
    sms_ids: list[int] = field(default_factory=list)
    to_run: list[int] = field(default_factory=list)


def sweep_slice(session: Session, after: int, now: datetime, policy: hold.HoldPolicy, limit: int = SWEEP_BATCH) -> SliceResult:
    """Remind and expire the ready packages with ids above `after` (one slice, not committed).

    Each reminder and each expiry is a conditional UPDATE on its own column, so a package already reminded or
    expired (by an earlier or a concurrent sweep) is left alone; the outbox row goes in the same transaction.
    """
    rows = session.execute(
        select(Package.id, Package.hold_until, Package.hold_reminder_sent_at, Package.hold_expired_at)
        .where(Package.state == State.READY_FOR_CUSTOMER_PICKUP, Package.id > after)
        .order_by(Package.id).limit(limit)).all()
    result = SliceResult(checked=len(rows), after=rows[-1].id if len(rows) == limit else None)
    lead = timedelta(hours=policy.reminder_hours)
    for package_id, until, reminded_at, expired_at in rows:
        if until is None:
            continue
        if until <= now:
            if expired_at is None and _mark_expired(session, package_id, now):
                result.expired += 1
            if policy.expiry_command:
                result.to_run.append(package_id)
        elif policy.reminder_hours and reminded_at is None and until - lead <= now:
            sms_id = _remind(session, package_id, now)
            if sms_id is not None:
                result.reminded += 1
                result.sms_ids.append(sms_id)
    return result


def _remind(session: Session, package_id: int, now: datetime) -> int | None:
    """Claim the package's reminder and queue its SMS (not committed); None when it was already claimed."""
    claimed = rowcount(session.execute(
        update(Package).where(Package.id == package_id, Package.hold_reminder_sent_at.is_(None),
                              Package.state == State.READY_FOR_CUSTOMER_PICKUP)
        .values(hold_reminder_sent_at=now).execution_options(synchronize_session=False)))
    if claimed != 1:
        return None
    package = session.get(Package, package_id)
    if package is None:
        return None
    body = in_customer_language(package, lambda: hold.reminder_sms(package))
    sms = outbox.enqueue_sms(session, to=package.customer.phone, body=body, package_id=package_id,
                             purpose=hold.REMINDER_PURPOSE)
    return sms.id


def _mark_expired(session: Session, package_id: int, now: datetime) -> bool:
    """Mark the hold expired, release the code and write the audit row (not committed); False when already done."""
    claimed = rowcount(session.execute(
        update(Package).where(Package.id == package_id, Package.hold_expired_at.is_(None),
                              Package.state == State.READY_FOR_CUSTOMER_PICKUP)
        .values(hold_expired_at=now).execution_options(synchronize_session=False)))
    if claimed != 1:
        return False
    hold.release_codes(session, package_id)
    session.add(PackageLog(package_id=package_id, from_state=State.READY_FOR_CUSTOMER_PICKUP,
                           to_state=State.READY_FOR_CUSTOMER_PICKUP, command=hold.EXPIRED_COMMAND, user_id=None,
                           note=_("The hold ended without a pickup; the pickup code was released.")))
    package = session.get(Package, package_id)
    if package is not None:
        held = shelf.current(session, package_id)
        if held is not None:
            shelf.release(session, package, user_id=None,
                          note=_("The hold ended: shelf slot %(label)s freed. Take the package off the shelf.",
                                 label=held.slot.label))
    return True


def _run_expiry_command(session: Session, package_id: int, slug: str) -> bool:
    """Run HOLD_POLICY's command on an expired package through the command door; False when it was refused."""
    try:
        commands.run_command(session, package_id, slug=slug, params={"reason": _("Hold expired")}, user_id=None,
                    store_ids=None)
    except DomainError as exc:
        log.warning("hold sweep: %s on package %s refused: %s", slug, package_id, exc)
        return False
    return True


def step(session: Session, run_id: int, token: str, *, limit: int = SWEEP_BATCH) -> None:
    """Carry a hold sweep run out from its cursor, a slice at a time (the run core's step for kind "hold_sweep")."""
    if not runs.claim(session, HoldSweepRun, run_id, token):
        return
    run = session.get(HoldSweepRun, run_id, populate_existing=True)
    if run is None:
        return
    policy = hold.policy(session)
    after = int((run.cursor or {}).get("after") or 0)
    checked, reminded, expired = run.checked, run.reminded, run.expired
    try:
        while True:
            now = utcnow()
            result = sweep_slice(session, after, now, policy, limit)
            checked, reminded, expired = checked + result.checked, reminded + result.reminded, expired + result.expired
            next_after = result.after
            runs.save_progress(session, HoldSweepRun, run_id, token, checked=checked, reminded=reminded,
                               expired=expired, cursor={"after": next_after if next_after is not None else after},
                               progress={"done": checked, "total": checked + (limit if next_after else 0)})
            outbox.deliver_after_commit(session, result.sms_ids)
            for package_id in result.to_run:
                if policy.expiry_command:
                    _run_expiry_command(session, package_id, policy.expiry_command)
            if next_after is None:
                break
            after = next_after
        runs.finish(session, HoldSweepRun, run_id, token, progress={"done": checked, "total": checked})
    except runs.Superseded:
        return
    except Exception as exc:  # the run must end failed with a message, not stay running
        log.exception("hold sweep run %s failed", run_id)
        session.rollback()
        runs.fail(session, KIND, run_id, token, _("The hold sweep stopped (%(error)s); start it again to carry on.",
                                                  error=exc.__class__.__name__))


runs.register(runs.RunKind(KIND, HoldSweepRun, step=step))


def start_sweep(session: Session, *, user_id: int | None = None, after: int = 0) -> HoldSweepRun:
    """Record a hold sweep run and queue it; returns it (already finished when the queue runs tasks inline)."""
    run = HoldSweepRun(task_id=runs.new_token(), started_by_id=user_id, cursor={"after": after}, progress={})
    session.add(run)
    session.commit()
    return runs.queue(session, KIND, run)
