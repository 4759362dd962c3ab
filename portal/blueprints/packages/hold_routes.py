"""The hold of a ready package on its page: pick up by, "Hold expired" with the proposed command, and extending it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.blueprints.packages import bp
from portal.blueprints.packages.routes import _panel_response
from portal.db_types import utcnow
from portal.errors import ConcurrentChange, DomainError, NotFound
from portal.extensions import db
from portal.packages import hold, queries
from portal.packages.models import Package, Transition
from portal.packages.states import State
from portal.web import is_htmx, user_store_ids


@dataclass(frozen=True)
class HoldView:
    """What the hold card shows for a ready package."""

    until: datetime | None
    expired: bool
    proposed: Transition | None  # the expiry command to run by hand (HOLD_POLICY without automatic running)
    max_days: int = hold.MAX_EXTEND_DAYS


@bp.app_template_global("hold_view")
def hold_view(package: Package) -> HoldView | None:
    """The hold card's facts for a package ready for pickup; None for any other package."""
    if package.state != State.READY_FOR_CUSTOMER_PICKUP:
        return None
    expired = hold.is_expired(package, utcnow())
    proposed = hold.proposed_command(db.session, package) if expired else None
    if proposed is not None and current_user.is_authenticated and \
            current_user.visibility not in (proposed.visibility or []):
        proposed = None
    return HoldView(until=package.hold_until, expired=expired, proposed=proposed)


@bp.post("/packages/<int:package_id>/hold/extend")
@login_required
def extend_hold(package_id: int):
    """Extend a ready package's hold by some days, with a reason (audited on the package)."""
    store_ids = user_store_ids()
    try:
        package = hold.extend_hold(db.session, package_id, days=request.form.get("days"),
                                   reason=request.form.get("reason"), user_id=current_user.id, store_ids=store_ids)
    except NotFound:
        abort(404)
    except DomainError as exc:
        if not is_htmx():
            flash(exc.message, "error")
            return redirect(url_for("packages.show", package_id=package_id))
        package = queries.get_package(db.session, package_id, store_ids)
        # htmx swaps 409 and 422 answers (base.html's htmx-config): the panel shows why, the form stays open.
        return _panel_response(package, status=409 if isinstance(exc, ConcurrentChange) else 422, error=exc.message)
    message = _("The hold of package %(number)s was extended to %(date)s.", number=package.number,
                date=hold.pick_up_by_text(package))
    if not is_htmx():
        flash(message, "success")
        return redirect(url_for("packages.show", package_id=package_id))
    return _panel_response(package, toast=(message, "success"))
