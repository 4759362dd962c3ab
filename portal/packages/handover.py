"""The counter's handover helpers: who is held by the per-user code limit, and a manager lifting it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.db_types import utcnow
from portal.errors import CommandRejected, NotFound, ValidationFailed
from portal.otp import service as otp
from portal.otp.models import OtpAttempt
from portal.packages.models import Package, PackageLog

LIFT_COMMAND = "lift-code-limit"
LIFT_REASON_MAX_LENGTH = 300


@dataclass
class HeldUser:
    """A user who may not check codes for a while after too many wrong ones."""

    id: int
    name: str
    minutes: int


def held_users(session: Session, stock_location_id: int) -> list[HeldUser]:
    """Users held by the per-user code limit after wrong codes on this store's packages, by name."""
    since = utcnow() - timedelta(minutes=current_app.config["OTP_USER_FAILURE_WINDOW_MINUTES"])
    user_ids = session.scalars(
        select(OtpAttempt.user_id).distinct()
        .join(Package, Package.id == OtpAttempt.package_id)
        .where(Package.stock_location_id == stock_location_id, OtpAttempt.success.is_(False),
               OtpAttempt.created_at >= since, OtpAttempt.user_id.is_not(None))
    ).all()
    held = []
    for user_id in user_ids:
        minutes = otp.user_limit_wait(session, user_id)
        user = session.get(User, user_id) if minutes else None
        if user is not None:
            held.append(HeldUser(id=user.id, name=user.full_name or user.username, minutes=minutes))
    return sorted(held, key=lambda held_user: held_user.name)


def lift_code_limit(session: Session, package_id: int, held_user_id: int, *, user_id: int,
                    store_ids: list[int] | None, reason: str) -> str:
    """A manager lets a held user check codes again, with a reason; an audit row on the package records both.

    Returns the toast. Raises ValidationFailed without a reason, NotFound for a package outside store_ids or an
    unknown user, CommandRejected when the user is not held.
    """
    reason = (reason or "").strip()[:LIFT_REASON_MAX_LENGTH]
    if not reason:
        raise ValidationFailed(_("Say why the limit is lifted."), field="reason")
    stmt = select(Package).where(Package.id == package_id)
    if store_ids is not None:
        stmt = stmt.where(Package.stock_location_id.in_(store_ids))
    package = session.scalar(stmt)
    held = session.get(User, held_user_id)
    if package is None or held is None:
        raise NotFound(_("Package not found."))
    name = held.full_name or held.username
    if not otp.user_limit_wait(session, held.id):
        raise CommandRejected(_("%(name)s may already check codes.", name=name))
    lifted = otp.lift_user_limit(session, held.id)
    session.add(PackageLog(package_id=package.id, from_state=package.state, to_state=package.state,
                           command=LIFT_COMMAND, user_id=user_id,
                           note=_("Code limit lifted for %(name)s (%(count)s wrong codes no longer count). "
                                  "Reason: %(reason)s", name=name, count=lifted, reason=reason)))
    session.commit()
    return _("%(name)s can check codes again.", name=name)
