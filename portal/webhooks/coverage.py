"""Setup step 12, Event list: which wanted events an active webhook subscription receives.

The admin picks the wanted events (application setting WANTED_EVENTS). The step is done when every wanted
event has an active subscription, its own or the wildcard "*"; otherwise it needs attention and its note
names the events still missing. Saving WANTED_EVENTS and every change to a subscription settle the step
here, so the wizard's page and the API settle it the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.settings import service as settings
from portal.setup import service as wizard
from portal.webhooks import catalogue
from portal.webhooks.models import WebhookSubscription

STEP_KEY = "events"
# The events a brand can want: the whole catalogue but the test event "Send test event" sends.
BRAND_EVENTS = [t for t in catalogue.EVENT_TYPES if t != catalogue.WEBHOOK_TEST]


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
    return _wanted(settings.get_value(session, settings.WANTED_EVENTS))


def _wanted(value: object) -> list[str] | None:
    """The brand events of a WANTED_EVENTS value, or None when it is not a choice yet."""
    return [v for v in value if v in BRAND_EVENTS] if isinstance(value, list) else None


def coverage(session: Session, wanted: list[str] | None = None) -> list[EventCoverage]:
    """Every catalogue event with whether it is wanted and which subscriptions (exact or "*") cover it."""
    wanted = wanted_events(session) if wanted is None else wanted
    subscriptions = list(session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id.desc())))
    return [EventCoverage(event_type, description, event_type in (wanted or []),
                          [s for s in subscriptions if s.event_type in (event_type, catalogue.WILDCARD)])
            for event_type, description in catalogue.EVENT_TYPES.items() if event_type in BRAND_EVENTS]


def missing_events(session: Session, wanted: list[str] | None = None) -> list[str]:
    """Wanted events that no active subscription receives yet."""
    return [c.event_type for c in coverage(session, wanted) if c.wanted and not c.covered]


def refresh_step(session: Session, *, user_id: int | None, wanted: list[str] | None = None) -> None:
    """Bring step 12 in line with the subscriptions, once the wanted events are chosen (not committed)."""
    wanted = wanted_events(session) if wanted is None else wanted
    if wanted is None:
        return
    session.flush()
    missing = missing_events(session, wanted)
    note = _("No active webhook subscription yet for: %(events)s.", events=", ".join(missing)) if missing else ""
    wizard.settle(session, STEP_KEY, not missing, user_id=user_id, note=note, attention=True)


def settle_events_step(session: Session, *, user_id: int | None) -> None:
    """refresh_step() and commit (for callers outside a domain change, such as the step's page)."""
    refresh_step(session, user_id=user_id)
    session.commit()


@settings.after_save(settings.WANTED_EVENTS)
def _wanted_events_saved(session: Session, before: object, after: object, *, user_id: int | None) -> None:
    """A new choice of events settles the step at once, whoever saved it."""
    refresh_step(session, user_id=user_id, wanted=_wanted(after))
