"""Handover routes: a manager lifting the per-user code limit from a package's page."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, request, url_for
from flask_login import current_user, login_required

from portal.blueprints.packages import bp
from portal.blueprints.packages.routes import MANAGER_ROLES, _panel_response
from portal.errors import DomainError, NotFound
from portal.extensions import db
from portal.packages import handover, queries
from portal.web import is_htmx, role_required, user_store_ids


@bp.app_template_filter("clock_time")
def clock_time(value: datetime | None, tz_name: str | None = None) -> str:
    """A time of today at the counter, to the second (14:05:09): two codes sent in one minute read differently."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(tz_name or current_app.config["DISPLAY_TIMEZONE"])).strftime("%H:%M:%S")


@bp.post("/packages/<int:package_id>/code-limit/<int:user_id>/lift")
@login_required
@role_required(*MANAGER_ROLES)
def lift_code_limit(package_id: int, user_id: int):
    """Let a user held by the per-user code limit check codes again, with a reason (managers; audited)."""
    store_ids = user_store_ids()
    try:
        message = handover.lift_code_limit(db.session, package_id, user_id, user_id=current_user.id,
                                           store_ids=store_ids, reason=request.form.get("reason", ""))
        level = "success"
    except NotFound:
        abort(404)
    except DomainError as exc:
        message, level = exc.message, "error"
    if not is_htmx():
        flash(message, level)
        return redirect(url_for("packages.show", package_id=package_id))
    package = queries.get_package(db.session, package_id, store_ids)
    return _panel_response(package, toast=(message, level))
