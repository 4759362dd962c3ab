"""A store's pickup settings page (managers): hold days, manager override, shared shelf slots and opening hours,
one form per store (portal.packages.pickup_settings). Reached from the pickup shelf page."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from portal.blueprints.packages import bp
from portal.blueprints.packages.routes import MANAGER_ROLES
from portal.errors import NotFound, ValidationFailed
from portal.extensions import db
from portal.packages import customer_link, hold, pickup_settings
from portal.stores.models import StockLocation
from portal.web import answer, is_htmx, role_required, user_store_ids


def _context(store_id: int, **extra) -> dict:
    """What the page shows: the store's settings, the other stores to switch to, the limits."""
    try:
        current = pickup_settings.read(db.session, store_id, user_store_ids())
    except NotFound:
        abort(404)
    stores = list(db.session.scalars(select(StockLocation).order_by(StockLocation.name)))
    return {"settings": current, "stores": stores, "max_hold_days": hold.MAX_HOLD_DAYS,
            "max_hours_lines": customer_link.MAX_HOURS_LINES, "max_hours_line": customer_link.MAX_HOURS_LINE,
            "errors": {}, "values": {}, **extra}


@bp.get("/stores/<int:store_id>/pickup-settings")
@login_required
@role_required(*MANAGER_ROLES)
def pickup_settings_page(store_id: int):
    """The store's pickup settings form (managers)."""
    return answer("packages/pickup_settings.html", "settings_form", **_context(store_id))


@bp.get("/stores/pickup-settings")
@login_required
@role_required(*MANAGER_ROLES)
def pickup_settings_choose():
    """The pickup settings of the store picked in the page's store list (or the first store)."""
    store_id = request.args.get("store", type=int) or db.session.scalar(
        select(StockLocation.id).order_by(StockLocation.name).limit(1))
    if store_id is None:
        abort(404)
    return redirect(url_for("packages.pickup_settings_page", store_id=store_id))


@bp.post("/stores/<int:store_id>/pickup-settings")
@login_required
@role_required(*MANAGER_ROLES)
def save_pickup_settings(store_id: int):
    """Save the form: every bad field says why and nothing is written; otherwise the page again with what changed."""
    form = request.form
    try:
        _settings, changed = pickup_settings.save(
            db.session, store_id, user_id=current_user.id, store_ids=user_store_ids(),
            hold_days=form.get("hold_days", ""), manager_override_allowed=form.get("manager_override") == "1",
            shared_slots=form.get("shared_slots") == "1", opening_hours=form.get("opening_hours", ""))
    except NotFound:
        abort(404)
    except ValidationFailed as exc:
        db.session.rollback()
        errors = exc.details.get("errors") or {exc.field or "form": exc.message}
        values = {"hold_days": form.get("hold_days", ""), "manager_override": form.get("manager_override") == "1",
                  "shared_slots": form.get("shared_slots") == "1", "opening_hours": form.get("opening_hours", "")}
        return answer("packages/pickup_settings.html", "settings_form", code=422,
                      toast=_("Nothing was saved: correct the fields marked below."), level="error",
                      **_context(store_id, errors=errors, values=values))
    message = _("Pickup settings saved.") if changed else _("Nothing changed.")
    if is_htmx():
        return answer("packages/pickup_settings.html", "settings_form", toast=message, level="success",
                      **_context(store_id))
    flash(message, "success")
    return redirect(url_for("packages.pickup_settings_page", store_id=store_id))
