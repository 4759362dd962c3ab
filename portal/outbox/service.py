"""Writing messages to the outbox inside a transaction, and sending them after it commits."""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import crypto
from portal.db_types import utcnow
from portal.outbox.models import OutboxMessage
from portal.sms import SmsError, get_provider

log = logging.getLogger(__name__)

SMS = "sms"
EVENT = "event"


def enqueue_sms(session: Session, *, to: str, body: str, package_id: int | None, purpose: str = "") -> OutboxMessage:
    """Add an SMS to the outbox (not committed). The body is encrypted because it may hold a code."""
    message = OutboxMessage(
        kind=SMS, package_id=package_id, payload={"to": to, "purpose": purpose},
        body_encrypted=crypto.encrypt(body),
    )
    session.add(message)
    session.flush()
    return message


def enqueue_event(session: Session, event_type: str, payload: dict, *, package_id: int | None = None,
                  vendor_name: str = "") -> OutboxMessage:
    """Add an event to the outbox (not committed), in the envelope {"event": {type, uuid}, "payload"}."""
    message = OutboxMessage(kind=EVENT, event_type=event_type, package_id=package_id)
    session.add(message)
    session.flush()
    event = {"type": event_type, "uuid": message.uuid}
    if vendor_name:
        event["name"] = vendor_name
    message.payload = {"event": event, "payload": payload}
    return message


def deliver_sms(session: Session, message_id: int) -> OutboxMessage:
    """Send one pending SMS now and record the outcome; a provider failure is logged, not raised."""
    message = session.get(OutboxMessage, message_id)
    if message is None or message.kind != SMS or message.status == OutboxMessage.SENT:
        return message
    message.attempts += 1
    try:
        body = crypto.decrypt(message.body_encrypted or "")
        provider_id = get_provider(current_app).send(message.payload["to"], body)
    except (SmsError, ValueError) as exc:
        message.status = OutboxMessage.FAILED
        message.last_error = str(exc)[:500]
        message.next_attempt_at = utcnow() + timedelta(seconds=min(300, 15 * 2 ** message.attempts))
        log.warning("SMS %s for package %s not sent (attempt %s): %s",
                    message.uuid, message.package_id, message.attempts, exc)
    else:
        message.status = OutboxMessage.SENT
        message.sent_at = utcnow()
        message.provider_id = provider_id or ""
        message.last_error = ""
        message.body_encrypted = None  # nothing to keep once the customer has it
        log.info("SMS %s for package %s sent via %s", message.uuid, message.package_id,
                 current_app.config["SMS_PROVIDER"])
    session.commit()
    return message


def deliver_after_commit(session: Session, message_ids: list[int]) -> None:
    """Send the SMS messages a committed transaction wrote; failures stay in the outbox for a retry."""
    for message_id in message_ids:
        deliver_sms(session, message_id)


def retry_sms(session: Session, message_id: int) -> OutboxMessage:
    """Send a failed SMS again (the staff "retry" button)."""
    return deliver_sms(session, message_id)


def latest_sms(session: Session, package_id: int) -> OutboxMessage | None:
    """The newest SMS written for a package, to show whether it went out."""
    return session.scalar(
        select(OutboxMessage)
        .where(OutboxMessage.package_id == package_id, OutboxMessage.kind == SMS)
        .order_by(OutboxMessage.id.desc())
        .limit(1)
    )


def pending_sms(session: Session, limit: int = 100) -> list[OutboxMessage]:
    """SMS that are due: pending or failed with their retry time reached."""
    return list(session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.kind == SMS,
               OutboxMessage.status.in_([OutboxMessage.PENDING, OutboxMessage.FAILED]),
               OutboxMessage.next_attempt_at <= utcnow())
        .order_by(OutboxMessage.id)
        .limit(limit)
    ))
