"""The pickup shelf on the store floor: put a ready package on a slot (scan or pick), move or free it, the shelf
view per store, and the slots themselves (managers create, rename, deactivate and print their labels)."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from portal.blueprints.packages import bp
from portal.blueprints.packages.routes import MANAGER_ROLES, _panel_response
from portal.db_types import utcnow
from portal.errors import DomainError, NotFound
from portal.extensions import db
from portal.packages import pickup_settings, queries, shelf
from portal.packages.barcodes import ean13_bars
from portal.packages.states import State
from portal.stores.models import StockLocation
from portal.web import answer, is_htmx, local_time, role_required, user_store_ids


@bp.app_template_global("shelf_choices")
def shelf_choices(package) -> dict:
    """What the package page's shelf box needs: the current slot and the store's active slots with who is on them."""
    if package.state != State.READY_FOR_CUSTOMER_PICKUP:
        return {"current": None, "slots": []}
    rows = shelf.shelf(db.session, package.stock_location_id, None)
    # The package is on its own store's shelf, whose assignments came with the rows: no query of its own.
    current = next((held for row in rows for held in row.assignments if held.package_id == package.id), None)
    return {"current": current,
            "slots": [(row.slot, len(row.assignments)) for row in rows if row.slot.is_active],
            "shared": shelf.shared_slots_allowed(db.session, package.stock_location_id)}


@bp.post("/packages/<int:package_id>/shelf")
@login_required
def assign_shelf(package_id: int):
    """Put the package on the scanned (or picked) slot, or move it there; the panel comes back with a toast."""
    store_ids = user_store_ids()
    slot_id = request.form.get("slot", type=int)
    barcode = (request.form.get("barcode") or "").strip()
    try:
        row = shelf.assign(db.session, package_id, user_id=current_user.id, store_ids=store_ids,
                           slot_id=None if barcode else slot_id, barcode=barcode or None)
        message, level, status = _("On shelf slot %(label)s.", label=row.slot.label), "success", 200
    except NotFound:
        abort(404)
    except DomainError as exc:
        message, level, status = exc.message, "error", 409 if exc.http_status == 409 else 422
    return _back_to_package(package_id, message, level, status)


@bp.post("/packages/<int:package_id>/shelf/free")
@login_required
def free_shelf(package_id: int):
    """Take the package off its slot by hand."""
    try:
        shelf.free(db.session, package_id, user_id=current_user.id, store_ids=user_store_ids())
        message, level, status = _("The shelf slot is free."), "success", 200
    except NotFound:
        abort(404)
    except DomainError as exc:
        message, level, status = exc.message, "error", 422
    return _back_to_package(package_id, message, level, status)


def _back_to_package(package_id: int, message: str, level: str, status: int):
    """The package panel for htmx, or the package page with a flash."""
    if request.form.get("from") == "shelf":
        package = queries.get_package(db.session, package_id, user_store_ids())
        return _back_to_shelf(package.stock_location_id, message, level, status)
    if not is_htmx():
        flash(message, level)
        return redirect(url_for("packages.show", package_id=package_id))
    package = queries.get_package(db.session, package_id, user_store_ids())
    return _panel_response(package, status=status, toast=(message, level),
                           error=message if level == "error" else None)


def _chosen_store(store_id: int | None) -> StockLocation:
    """The store whose shelf to show: the one asked for if the user may see it, else the user's first store."""
    store_ids = user_store_ids()
    if store_id is None:
        if store_ids is None:
            store_id = db.session.scalar(select(StockLocation.id).where(StockLocation.kind == "store")
                                         .order_by(StockLocation.name).limit(1))
        else:
            store_id = store_ids[0] if store_ids else None
    if store_id is None:
        abort(404)
    try:
        return shelf.check_store(db.session, store_id, store_ids)
    except NotFound:
        abort(404)


def _shelf_context(store: StockLocation) -> dict:
    """What the shelf page shows."""
    store_ids = user_store_ids()
    stores = current_user.stock_locations if store_ids is not None else list(db.session.scalars(
        select(StockLocation).order_by(StockLocation.name)))
    rows = shelf.shelf(db.session, store.id, store_ids)
    return {"store": store, "stores": stores, "rows": rows, "active_slots": [r.slot for r in rows if r.slot.is_active],
            "shared": shelf.shared_slots_allowed(db.session, store.id),
            "manages": current_user.role in MANAGER_ROLES}


def _back_to_shelf(store_id: int, message: str, level: str, status: int = 200):
    """The shelf (its table only, for htmx) with a toast, or the page with a flash."""
    if not is_htmx():
        flash(message, level)
        return redirect(url_for("packages.shelf_view", store=store_id))
    return answer("packages/shelf.html", "shelf_body", code=status, toast=message, level=level,
                  **_shelf_context(_chosen_store(store_id)))


@bp.get("/packages/shelf")
@login_required
def shelf_view():
    """A store's pickup shelf: which slot holds which package, since when; move a package; manage the slots."""
    store = _chosen_store(request.args.get("store", type=int))
    return answer("packages/shelf.html", "shelf_body", **_shelf_context(store))


@bp.post("/packages/shelf/<int:store_id>/slots")
@login_required
@role_required(*MANAGER_ROLES)
def create_shelf_slot(store_id: int):
    """Add a slot to the store's shelf (managers)."""
    store = _chosen_store(store_id)
    try:
        slot = shelf.create_slot(db.session, store.id, label=request.form.get("label", ""),
                                 barcode=request.form.get("barcode", ""), store_ids=user_store_ids())
        return _back_to_shelf(store.id, _("Slot %(label)s added.", label=slot.label), "success")
    except DomainError as exc:
        return _back_to_shelf(store.id, exc.message, "error", 422)


@bp.post("/packages/shelf/slots/<int:slot_id>")
@login_required
@role_required(*MANAGER_ROLES)
def update_shelf_slot(slot_id: int):
    """Rename a slot, or deactivate / reactivate it (managers)."""
    store_ids = user_store_ids()
    try:
        slot = shelf.get_slot(db.session, slot_id, store_ids)
    except NotFound:
        abort(404)
    active = request.form.get("active")
    try:
        slot = shelf.update_slot(db.session, slot.id, store_ids=store_ids, label=request.form.get("label"),
                                 is_active=None if active is None else active == "1")
        return _back_to_shelf(slot.stock_location_id, _("Slot %(label)s saved.", label=slot.label), "success")
    except DomainError as exc:
        db.session.expire_all()
        return _back_to_shelf(slot.stock_location_id, exc.message, "error", 409 if exc.http_status == 409 else 422)


@bp.post("/packages/shelf/<int:store_id>/settings")
@login_required
@role_required(*MANAGER_ROLES)
def shelf_settings(store_id: int):
    """Allow or forbid several packages on one slot (managers)."""
    store = _chosen_store(store_id)
    allowed = request.form.get("shared") == "1"
    pickup_settings.save(db.session, store.id, user_id=current_user.id, shared_slots=allowed)
    message = _("Slots may now hold several packages.") if allowed else _("Each slot now holds one package.")
    return _back_to_shelf(store.id, message, "success")


@bp.get("/packages/shelf/<int:store_id>/labels")
@login_required
def shelf_labels(store_id: int):
    """The store's active slot labels on paper: the label in large type over its barcode."""
    store = _chosen_store(store_id)
    slots = shelf.list_slots(db.session, store.id, active_only=True)
    bars = {slot.barcode: ean13_bars(slot.barcode, height=60) for slot in slots}
    return render_template("packages/shelf_labels.html", store=store, slots=slots, bars=bars,
                           printed_at=local_time(utcnow()))
