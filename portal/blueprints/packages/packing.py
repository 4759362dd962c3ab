"""The packing screen: one scan field, lines ticked in any order, by scan or by tap, then one confirm tap."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.blueprints.packages import bp
from portal.errors import DomainError, NotFound
from portal.extensions import db
from portal.packages import packing
from portal.web import answer, hx_redirect, is_htmx, user_store_ids

PAGE = "packages/packing.html"
LINE = "packages/_packing_line.html"
PROGRESS = "packages/_packing_progress.html"
FEEDBACK = "packages/_packing_feedback.html"


def _pack_url(package_id: int) -> str:
    """The packing screen of a package."""
    return url_for("packages.pack", package_id=package_id)


def _counter(state: packing.Packing) -> str:
    """ "3 of 5 items", as the counter and the spoken feedback say it."""
    return _("%(done)s of %(total)s items", done=state.units_done, total=state.units_total)


@bp.get("/packages/<int:package_id>/pack")
@login_required
def pack(package_id: int):
    """The packing screen; `scan=<barcode>` (from the scan box) ticks that item first, then drops the argument."""
    store_ids, visibility = user_store_ids(), current_user.visibility
    try:
        state = packing.open_packing(db.session, package_id, store_ids, visibility)
    except NotFound:
        abort(404)
    if state.transition is None:
        flash(_("Package %(number)s is not waiting to be packed.", number=state.package.number), "info")
        return redirect(url_for("packages.show", package_id=package_id))
    scanned = request.args.get("scan")
    if scanned is not None:
        try:
            tick = packing.scan(db.session, package_id, scanned, store_ids=store_ids, visibility=visibility)
            flash(_("%(name)s ticked. %(counter)s.", name=tick.line.item.name, counter=_counter(tick.packing)),
                  "success")
        except DomainError as exc:
            flash(exc.message, "error")
        return redirect(_pack_url(package_id))
    return answer(PAGE, state=state, counter=_counter(state))


def _fragment(state: packing.Packing, line: packing.Line | None, message: str, *, ok: bool, code: int = 200):
    """The answer to a scan or tap: the feedback text, and only the line and the counter that changed."""
    parts = [FEEDBACK] + ([LINE] if line is not None else []) + [PROGRESS]
    return answer(PAGE, *parts, code=code, fragment=True, state=state, line=line, message=message, ok=ok, oob=True,
                  counter=_counter(state), events={"packing-tick" if ok else "packing-refused": True})


def _tick_answer(package_id: int, do_tick, message: str):
    """Run one tick (a scan or a tap) and answer it: the changed line and counter for htmx, else the page again.

    `do_tick(store_ids, visibility)` returns the tick; `message` names the item and the counter
    (%(name)s, %(counter)s). A refusal keeps every line as it was and says why.
    """
    store_ids, visibility = user_store_ids(), current_user.visibility
    try:
        tick = do_tick(store_ids, visibility)
    except NotFound:
        abort(404)
    except DomainError as exc:
        if not is_htmx():
            flash(exc.message, "error")
            return redirect(_pack_url(package_id))
        state = packing.load(db.session, package_id, store_ids, visibility)
        return _fragment(state, None, exc.message, ok=False, code=422)
    said = message % {"name": tick.line.item.name, "counter": _counter(tick.packing)}
    if not is_htmx():
        flash(said, "success")
        return redirect(_pack_url(package_id))
    return _fragment(tick.packing, tick.line, said, ok=True)


@bp.post("/packages/<int:package_id>/pack/scan")
@login_required
def pack_scan(package_id: int):
    """One scan: tick the first unticked unit with this barcode, or refuse the barcode with its text."""
    barcode = request.form.get("barcode", "")
    return _tick_answer(package_id, lambda store_ids, visibility: packing.scan(
        db.session, package_id, barcode, store_ids=store_ids, visibility=visibility),
        _("%(name)s ticked. %(counter)s."))


@bp.post("/packages/<int:package_id>/pack/items/<int:item_id>/tick")
@login_required
def pack_tick(package_id: int, item_id: int):
    """Tick one unit of a line by tap, where a label will not scan; the audit row records it as ticked by hand."""
    return _tick_answer(package_id, lambda store_ids, visibility: packing.tick_by_hand(
        db.session, package_id, item_id, store_ids=store_ids, visibility=visibility),
        _("%(name)s ticked by hand. %(counter)s."))


@bp.get("/packages/<int:package_id>/pack/items/<int:item_id>/not-found")
@login_required
def pack_not_found_confirm(package_id: int, item_id: int):
    """Ask before refusing the package for a missing item: the line shows what will happen."""
    state = _state_or_404(package_id)
    line = next((m for m in state.lines if m.item.id == item_id), None)
    if line is None:
        abort(404)
    confirm = request.args.get("cancel") != "1"
    return answer(PAGE, LINE, fragment=True, state=state, line=line, oob=False, confirm_not_found=confirm,
                  reason=packing.not_found_reason(db.session))


@bp.post("/packages/<int:package_id>/pack/items/<int:item_id>/not-found")
@login_required
def pack_not_found(package_id: int, item_id: int):
    """The item is not on the shelf: refuse the package as not found, so that it can be rescheduled."""
    store_ids, visibility = user_store_ids(), current_user.visibility
    try:
        result = packing.mark_not_found(db.session, package_id, item_id, user_id=current_user.id,
                                        store_ids=store_ids, visibility=visibility)
    except NotFound:
        abort(404)
    except DomainError as exc:
        flash(exc.message, "error")
        return hx_redirect(_pack_url(package_id))
    flash(result.message, "success")
    return hx_redirect(url_for("packages.show", package_id=package_id))


@bp.post("/packages/<int:package_id>/pack/complete")
@login_required
def pack_complete(package_id: int):
    """Every line ticked: pack the package through Complete Packaging, then show the package."""
    store_ids, visibility = user_store_ids(), current_user.visibility
    try:
        result = packing.complete(db.session, package_id, user_id=current_user.id, store_ids=store_ids,
                                  visibility=visibility, expected_version=request.form.get("version", type=int))
    except NotFound:
        abort(404)
    except DomainError as exc:
        flash(exc.message, "error")
        return hx_redirect(_pack_url(package_id))
    flash(result.message, "success")
    return hx_redirect(url_for("packages.show", package_id=package_id))


@bp.post("/packages/<int:package_id>/pack/reset")
@login_required
def pack_reset(package_id: int):
    """Start over: every tick of the package goes (a line ticked by mistake, items put back on the shelf)."""
    state = _state_or_404(package_id)
    if state.transition is not None:
        packing.clear(db.session, package_id)
        flash(_("Every tick was removed; scan the items again."), "info")
    return hx_redirect(_pack_url(package_id))


def _state_or_404(package_id: int) -> packing.Packing:
    """The packing state of a package in the user's stores; 404 otherwise."""
    try:
        return packing.load(db.session, package_id, user_store_ids(), current_user.visibility)
    except NotFound:
        abort(404)
