"""The work queue on the staff home: which tab a request shows, and where a scan from the scan box leads."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.errors import CommandRejected
from portal.extensions import db
from portal.packages import commands, customer_link, queries, work_queue
from portal.packages.states import State
from portal.web import user_store_ids

PACKING_COMMAND = "COMPLETE_PACKAGING"


def chosen_tab(args, filters: queries.PackageFilters) -> str:
    """The tab a request shows: the one named in the URL, "all" when the list is filtered, else "To pack"."""
    if filters.status is not None or filters.delivery_type or filters.search:
        return "all"
    tab = (args.get("tab") or "").strip()
    if tab in work_queue.TABS:
        return tab
    return "all" if filters.after is not None or filters.before is not None else "pack"


def allowance() -> work_queue.Allowance:
    """How long packing and pickup may take, from the configuration."""
    config = current_app.config
    return work_queue.Allowance(pack=timedelta(minutes=config["QUEUE_PACK_WITHIN_MINUTES"]),
                                pickup=timedelta(hours=config["QUEUE_PICKUP_WITHIN_HOURS"]))


def package_url(package) -> str:
    """A package's page; a package ready for pickup opens straight on the handover."""
    if package.state == State.READY_FOR_CUSTOMER_PICKUP:
        return url_for("packages.show", package_id=package.id, handover=1)
    return url_for("packages.show", package_id=package.id)


def packing_url(package, barcode: str) -> str:
    """The package's packing screen with the scanned item ticked, or its page when packing is not offered here."""
    for transition in commands.available_transitions(db.session, package, current_user.visibility):
        if transition.command_code == PACKING_COMMAND:
            return url_for("packages.pack", package_id=package.id, scan=barcode)
    return url_for("packages.show", package_id=package.id)


def qr_target(text: str) -> tuple[str | None, str | None]:
    """A customer's QR code opens its package's handover with the code filled in, or says why it may not."""
    try:
        scanned = customer_link.scan(db.session, text, user_store_ids())
    except CommandRejected as exc:
        return None, exc.message
    return url_for("packages.show", package_id=scanned.package.id, handover=1, qr=scanned.token), None


def scan_target(match: work_queue.ScanMatch) -> tuple[str | None, str | None]:
    """Where a scan leads (a URL), or the message the scan box shows instead (None, None: show the list)."""
    if match.kind == "none" and customer_link.is_qr_payload(match.text):
        return qr_target(match.text)
    if match.kind == "package" and match.package is not None:
        return package_url(match.package), None
    if match.kind == "item" and match.package is not None and match.barcode:
        return packing_url(match.package, match.barcode), None
    if match.kind == "several" and match.barcode:
        return None, _("Several open packages hold item “%(text)s”: scan the package number instead.",
                       text=match.text)
    if match.kind == "none":
        return None, _("Nothing matches “%(text)s”: not a package, order or item barcode of your stores.",
                       text=match.text)
    return None, None
