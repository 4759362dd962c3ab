"""Recording events: the event's outbox row, in the caller's transaction. Nothing here commits.

record_event() writes one kind "event" row. When an active subscription wants the type (or "*"), the
row is "pending", and after the commit the worker fans it out into one "webhook" row per subscription
(portal.outbox.service.fan_out, which asks recipients() here who receives it), atomically: a crash
after the commit loses nothing, because the pending event is a row the sweep will find. The command
pays for one row per event, not per delivery. The payload builders of a domain's own events live with
that domain (portal.packages.events); the ones here take any object with the right attributes.
"""
from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, scoped_session

from portal.outbox import service as outbox
from portal.webhooks import catalogue
from portal.webhooks.models import WebhookSubscription

log = logging.getLogger(__name__)


_CACHE = "webhook_active_subscriptions"
_ACTIVE = (select(WebhookSubscription.id, WebhookSubscription.event_type)
           .where(WebhookSubscription.is_active.is_(True)).order_by(WebhookSubscription.id))


def active_subscriptions(session: Session) -> list[tuple[int, str]]:
    """(id, event_type) of every active subscription, read once per transaction (a command records several events)."""
    session = session() if isinstance(session, scoped_session) else session
    transaction = session.get_transaction()
    cached = session.info.get(_CACHE)
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1]
    # On the transaction's own connection (Core): the caller's pending objects need no autoflush for this.
    rows = [tuple(row) for row in session.connection().execute(_ACTIVE)]
    session.info[_CACHE] = (session.get_transaction(), rows)
    return rows


_RECIPIENTS_CACHE = "webhook_recipients"
_RECIPIENTS = (select(WebhookSubscription.id, WebhookSubscription.event_type, WebhookSubscription.created_at)
               .where(WebhookSubscription.is_active.is_(True)).order_by(WebhookSubscription.id))


def recipients(session: Session, event_type: str, happened_at: datetime) -> list[int]:
    """The outbox's recipients lookup for the fan-out: active subscriptions that receive the type (or "*")
    and existed when the event happened, by id.

    The active subscriptions are read once per transaction: a batch fan-out asks for many events at once.
    """
    session = session() if isinstance(session, scoped_session) else session
    transaction = session.get_transaction()
    cached = session.info.get(_RECIPIENTS_CACHE)
    if cached is not None and transaction is not None and cached[0] is transaction:
        rows = cached[1]
    else:
        rows = list(session.connection().execute(_RECIPIENTS))
        session.info[_RECIPIENTS_CACHE] = (session.get_transaction(), rows)
    return [sid for sid, wanted, created_at in rows
            if wanted in (event_type, catalogue.WILDCARD) and created_at <= happened_at]


def matching_subscription_ids(session: Session, event_type: str) -> list[int]:
    """Active subscriptions that receive this event type (by name or by the wildcard)."""
    return [sid for sid, wanted in active_subscriptions(session) if wanted in (event_type, catalogue.WILDCARD)]


def record_events(session: Session, new_events: list[outbox.NewEvent]) -> list[outbox.RecordedEvent]:
    """Write several events in one go (not committed); see record_event."""
    if not current_app.config.get("OUTBOX_RECORD_EVENTS", True) or not new_events:
        return []
    for new in new_events:
        if new.event_type not in catalogue.EVENT_TYPES:
            raise ValueError(f"{new.event_type!r} is not in the event catalogue")
        new.vendor_name = new.vendor_name or catalogue.VENDOR_NAMES.get(new.event_type, "")
        new.subscription_ids = matching_subscription_ids(session, new.event_type)
        if new.secret_payload and not new.subscription_ids:
            log.warning("a %s event carries data for an Extension application, but no active webhook "
                        "subscription receives it", new.event_type)
    return outbox.write_events(session, new_events)


def record_event(session: Session, event_type: str, payload: dict, package_id: int | None = None,
                 secret_payload: dict | None = None) -> outbox.RecordedEvent | None:
    """Write an event to the outbox (not committed); returns its uuid and type.

    One "event" row, pending fan-out when an active subscription wants the type or "*". secret_payload
    (the pickup code in extension mode) is only ever stored encrypted: in the event's body until the
    fan-out moves it into the webhook messages' bodies, never in a plaintext column. Returns None when
    event recording is switched off (OUTBOX_RECORD_EVENTS, benchmark only).
    """
    recorded = record_events(session, [outbox.NewEvent(event_type, payload, package_id=package_id,
                                                       secret_payload=secret_payload)])
    return recorded[0] if recorded else None


def stock_location_payload(location) -> dict:
    """A stock location as events show it."""
    def number(value):
        """A Decimal coordinate as a JSON number."""
        return float(value) if value is not None else None

    return {"id": location.id, "omnitron_id": location.omnitron_id, "erp_code": location.erp_code,
            "name": location.name, "kind": location.kind, "city": location.city, "address": location.address,
            "timezone": location.timezone, "latitude": number(location.latitude),
            "longitude": number(location.longitude), "max_quota": location.max_quota, "quota": location.quota,
            "available_quota": location.available_quota, "is_active": location.is_active}


def stock_location_created(session: Session, location) -> outbox.RecordedEvent | None:
    """Record stock_location.created for a location just added (call before the sync's commit)."""
    if location.id is None:
        session.flush()
    return record_event(session, catalogue.STOCK_LOCATION_CREATED, stock_location_payload(location))


def stock_location_updated(session: Session, location,
                           changed: list[str] | None = None) -> outbox.RecordedEvent | None:
    """Record stock_location.updated for a location whose details changed (call before the commit)."""
    payload = stock_location_payload(location)
    if changed is not None:
        payload["changed_fields"] = sorted(changed)
    return record_event(session, catalogue.STOCK_LOCATION_UPDATED, payload)

