"""Setup wizard step 12, Event list: the events the brand wants, and the webhook subscriptions they need.

The admin ticks the wanted events (application setting WANTED_EVENTS). The step is done when every wanted
event has an active subscription, its own or the wildcard "*"; otherwise it needs attention and its note
names the events still missing. The webhook screens and API call settle_events_step() after each change,
so the step follows the subscriptions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session

from portal.blueprints.setup import bp
from portal.blueprints.setup.shared import step_page, step_url
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.settings import service as settings
from portal.setup import service as wizard
from portal.web import is_fragment_request, render_block, with_toast
from portal.webhooks import catalogue
from portal.webhooks import service as webhooks

STEP_KEY = "events"


# The events a brand can want: the whole catalogue but the test event "Send test event" sends.
BRAND_EVENTS = [t for t in catalogue.EVENT_TYPES if t != catalogue.WEBHOOK_TEST]


TEMPLATE = "setup/events.html"


BLOCK = "events_panel"


@dataclass
class EventCoverage:
    """One catalogue event: whether the brand wants it, and the subscriptions that receive it."""

    event_type: str
    description: str
    wanted: bool
    subscriptions: list = field(default_factory=list)

    @property
    def covered(self) -> bool:
        """True when an active subscription receives this event."""
        return any(s.is_active for s in self.subscriptions)


def wanted_events(session: Session) -> list[str] | None:
    """The stored WANTED_EVENTS, or None when the admin has not chosen yet."""
    value = settings.get_value(session, settings.WANTED_EVENTS)
    return [v for v in value if v in BRAND_EVENTS] if isinstance(value, list) else None


def coverage(session: Session, wanted: list[str] | None = None) -> list[EventCoverage]:
    """Every catalogue event with whether it is wanted and which subscriptions (exact or "*") cover it."""
    wanted = wanted_events(session) if wanted is None else wanted
    subscriptions = webhooks.list_subscriptions(session)
    return [EventCoverage(event_type, description, event_type in (wanted or []),
                          [s for s in subscriptions if s.event_type in (event_type, catalogue.WILDCARD)])
            for event_type, description in catalogue.EVENT_TYPES.items() if event_type in BRAND_EVENTS]


def missing_events(session: Session) -> list[str]:
    """Wanted events that no active subscription receives yet."""
    return [c.event_type for c in coverage(session) if c.wanted and not c.covered]


def settle_events_step(session: Session, *, user_id: int | None) -> None:
    """Bring step 12 in line with the subscriptions (once the wanted events are chosen) and commit."""
    if wanted_events(session) is None:
        return
    missing = missing_events(session)
    note = f"No active webhook subscription yet for: {', '.join(missing)}." if missing else ""
    wizard.settle(session, STEP_KEY, not missing, user_id=user_id, note=note, attention=True)
    session.commit()


def _context(errors: dict | None = None, chosen: list[str] | None = None) -> dict:
    """What the step shows: the catalogue with coverage, the saved choice and any error."""
    saved = wanted_events(db.session)
    rows = coverage(db.session, chosen if chosen is not None else saved)
    return {"rows": rows, "saved": saved, "errors": errors or {}, "wildcard": catalogue.WILDCARD,
            "missing": [r for r in rows if r.wanted and not r.covered]}


def _respond(code: int = 200, toast: str = "", level: str = "success", **context):
    """The step page, or for htmx the panel plus the step's state and note (out of band)."""
    if is_fragment_request():
        status = wizard.status(db.session, STEP_KEY)
        body = render_block(TEMPLATE, BLOCK, status=status, form=FlaskForm(), step_url=step_url, **context)
        body += render_template("setup/_settings_state.html", status=status)
        response = make_response(body, code)
        response.vary.add("HX-Request")
        return with_toast(response, toast, level) if toast else response
    response = make_response(step_page(TEMPLATE, STEP_KEY, **context), code)
    response.vary.add("HX-Request")
    return response


@bp.route("/events", methods=["GET", "POST"])
def events():
    """Step 12: tick the events the brand wants; see which still lack an active webhook subscription."""
    if request.method == "GET":
        # Subscriptions change outside the wizard (a receiver answering 410 disables one): re-check.
        settle_events_step(db.session, user_id=None)
        return _respond(**_context())
    chosen = request.form.getlist("events")
    if not FlaskForm().validate_on_submit():
        return _respond(422, **_context({"form": "The form expired; reload the page and try again."}, chosen))
    try:
        settings.set_value(db.session, settings.WANTED_EVENTS, chosen, user_id=current_user.id)
    except ValidationFailed as exc:
        db.session.rollback()
        return _respond(422, **_context({"events": exc.message}, [c for c in chosen if c in catalogue.EVENT_TYPES]))
    settle_events_step(db.session, user_id=current_user.id)
    missing = missing_events(db.session)
    if not missing:
        message = "Event list saved. Every wanted event has a subscription."
    elif len(missing) == 1:
        message = "Event list saved. 1 wanted event still needs a webhook subscription."
    else:
        message = f"Event list saved. {len(missing)} wanted events still need a webhook subscription."
    if is_fragment_request():
        return _respond(toast=message, **_context())
    flash(message, "success")
    return redirect(url_for("setup.events"))
