"""Setup wizard step 12, Event list: the events the brand wants, and the webhook subscriptions they need.

The admin ticks the wanted events (application setting WANTED_EVENTS). The rule of the step (done when
every wanted event has an active subscription) lives in portal/webhooks/coverage.py, which saving the
setting and every subscription change call.
"""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from portal.blueprints.setup import bp
from portal.blueprints.setup.shared import step_answer
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.settings import service as settings
from portal.web import is_fragment_request
from portal.webhooks import catalogue
from portal.webhooks import coverage as events_coverage
from portal.webhooks.coverage import STEP_KEY, coverage, missing_events, wanted_events

TEMPLATE = "setup/events.html"
BLOCK = "events_panel"


def _context(errors: dict | None = None, chosen: list[str] | None = None) -> dict:
    """What the step shows: the catalogue with coverage, the saved choice and any error."""
    saved = wanted_events(db.session)
    rows = coverage(db.session, chosen if chosen is not None else saved)
    return {"rows": rows, "saved": saved, "errors": errors or {}, "wildcard": catalogue.WILDCARD,
            "missing": [r for r in rows if r.wanted and not r.covered],
            "plain_name": catalogue.plain_name, "vendor_label": catalogue.vendor_label}


def _respond(code: int = 200, toast: str = "", level: str = "success", **context):
    """The step page, or for htmx the panel plus the step's state and note (out of band)."""
    return step_answer(TEMPLATE, STEP_KEY, BLOCK, "setup/_settings_state.html", code=code, toast=toast or None,
                       level=level, **context)


@bp.route("/events", methods=["GET", "POST"])
def events():
    """Step 12: tick the events the brand wants; see which still lack an active webhook subscription."""
    if request.method == "GET":
        # Subscriptions change outside the wizard (a receiver answering 410 disables one): re-check.
        events_coverage.settle_events_step(db.session, user_id=None)
        return _respond(**_context())
    chosen = request.form.getlist("events")
    try:
        settings.set_value(db.session, settings.WANTED_EVENTS, chosen, user_id=current_user.id)
    except ValidationFailed as exc:
        db.session.rollback()
        return _respond(422, **_context({"events": exc.message}, [c for c in chosen if c in catalogue.EVENT_TYPES]))
    missing = missing_events(db.session)
    if not missing:
        message = _("Event list saved. Every wanted event has a subscription.")
    else:
        message = ngettext("Event list saved. %(num)d wanted event still needs a webhook subscription.",
                           "Event list saved. %(num)d wanted events still need a webhook subscription.", len(missing))
    if is_fragment_request():
        return _respond(toast=message, **_context())
    flash(message, "success")
    return redirect(url_for("setup.events"))
