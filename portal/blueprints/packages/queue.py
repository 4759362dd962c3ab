"""The work queue on the staff home: which tab a request shows, and where a scan from the scan box leads."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.extensions import db
from portal.packages import commands, queries, work_queue
from portal.packages.states import State

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


def scan_target(match: work_queue.ScanMatch) -> tuple[str | None, str | None]:
    """Where a scan leads (a URL), or the message the scan box shows instead (None, None: show the list)."""
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
