"""Recording events: the event's outbox record and its webhook fan-out, in the caller's transaction.

record_event() writes the kind "event" row and, in the same transaction, one kind "webhook" row per
active subscription to the event's type (or to "*"). Fanning out at write time means a crash after
the commit loses nothing: every delivery is already a row the worker will find. Nothing here commits.
"""
from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.outbox import service as outbox
from portal.outbox.models import OutboxMessage
from portal.webhooks import catalogue
from portal.webhooks.models import WebhookSubscription

log = logging.getLogger(__name__)


def matching_subscription_ids(session: Session, event_type: str) -> list[int]:
    """Active subscriptions that receive this event type (by name or by the wildcard)."""
    return list(session.scalars(
        select(WebhookSubscription.id)
        .where(WebhookSubscription.is_active.is_(True),
               WebhookSubscription.event_type.in_([event_type, catalogue.WILDCARD]))
        .order_by(WebhookSubscription.id)))


def record_event(session: Session, event_type: str, payload: dict, package_id: int | None = None,
                 secret_payload: dict | None = None) -> OutboxMessage | None:
    """Write an event and its webhook deliveries to the outbox (not committed); returns the event row.

    secret_payload (the pickup code in extension mode) goes only into the webhook rows' encrypted
    bodies, never into the event row or any plaintext column. Returns None when event recording is
    switched off (OUTBOX_RECORD_EVENTS, benchmark only).
    """
    if not current_app.config.get("OUTBOX_RECORD_EVENTS", True):
        return None
    if event_type not in catalogue.EVENT_TYPES:
        raise ValueError(f"{event_type!r} is not in the event catalogue")
    vendor_name = catalogue.VENDOR_NAMES.get(event_type, "")
    event = outbox.enqueue_event(session, event_type, payload, package_id=package_id, vendor_name=vendor_name)
    subscription_ids = matching_subscription_ids(session, event_type)
    for subscription_id in subscription_ids:
        outbox.enqueue_webhook(session, subscription_id, event_type, payload, event_uuid=event.uuid,
                               package_id=package_id, vendor_name=vendor_name, secret_payload=secret_payload)
    if secret_payload and not subscription_ids:
        log.warning("event %s %s carries data for an Extension application, but no active webhook subscription "
                    "receives it", event_type, event.uuid)
    return event


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


def stock_location_created(session: Session, location) -> OutboxMessage | None:
    """Record stock_location.created for a location just added (call before the sync's commit)."""
    if location.id is None:
        session.flush()
    return record_event(session, catalogue.STOCK_LOCATION_CREATED, stock_location_payload(location))


def stock_location_updated(session: Session, location, changed: list[str] | None = None) -> OutboxMessage | None:
    """Record stock_location.updated for a location whose details changed (call before the commit)."""
    payload = stock_location_payload(location)
    if changed is not None:
        payload["changed_fields"] = sorted(changed)
    return record_event(session, catalogue.STOCK_LOCATION_UPDATED, payload)


def package_created(session: Session, package) -> OutboxMessage | None:
    """Record package.created for a package just added (call before the commit that saves it)."""
    from portal.packages.commands import package_payload  # the engine imports this module

    if package.id is None:
        session.flush()
    return record_event(session, catalogue.PACKAGE_CREATED, package_payload(package), package_id=package.id)
