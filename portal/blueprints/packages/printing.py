"""Printed paper for the store floor: the pick list of the packages to pack, and a packing slip per package.

Both are plain pages with a print stylesheet (static/print.css): the browser's own print dialog makes the
paper, so no PDF library is needed and what staff see on the tablet is what comes out of the printer.
"""
from __future__ import annotations

from flask import render_template
from flask_login import login_required

from portal.blueprints.packages import bp
from portal.db_types import utcnow
from portal.extensions import db
from portal.packages import queries
from portal.packages.barcodes import ean13_bars
from portal.web import local_time, user_store_ids


@bp.get("/packages/pick-list")
@login_required
def pick_list():
    """The pick list: every package still to pack in the user's stores, its items grouped by item."""
    picks = queries.pick_list(db.session, user_store_ids())
    bars = {line.barcode: ean13_bars(line.barcode) for line in picks.lines}
    return render_template("packages/pick_list.html", picks=picks, bars=bars, printed_at=local_time(utcnow()))


@bp.get("/packages/<int:package_id>/packing-slip")
@login_required
def packing_slip(package_id: int):
    """The packing slip that goes into one package's box: order, customer, items and store."""
    package = queries.get_package(db.session, package_id, user_store_ids())
    bars = {item.barcode: ean13_bars(item.barcode) for item in package.items}
    return render_template("packages/packing_slip.html", package=package, bars=bars, printed_at=local_time(utcnow()))
