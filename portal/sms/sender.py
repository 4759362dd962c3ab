"""The outbox's SMS channel: sends a claimed "sms" message through the configured provider.

portal.wiring registers send_sms as the outbox's sender for kind "sms". A provider failure is
recorded on the message (failed, retried later; dead after OUTBOX_SMS_MAX_ATTEMPTS), never raised.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy.orm import Session

from portal import crypto
from portal.db_types import utcnow
from portal.outbox import service as outbox
from portal.outbox.models import OutboxMessage
from portal.sms import SmsError, get_provider

log = logging.getLogger(__name__)


def retry_delay(attempts: int) -> float:
    """Seconds before an SMS is tried again: 30 s doubling, at most 5 minutes."""
    return float(min(300, 15 * 2 ** attempts))


def send_sms(session: Session, message: OutboxMessage, lease: datetime) -> outbox.Outcome:
    """Send a claimed SMS through the provider and record the outcome (commits); a provider failure is logged."""
    message_id, attempts, to = message.id, message.attempts, message.payload["to"]
    uuid, package_id, sealed = message.uuid, message.package_id, message.body_encrypted or ""
    session.commit()  # hold no transaction while the provider is called
    try:
        body = crypto.decrypt(sealed)
        provider_id = get_provider(current_app).send(to, body)
    except (SmsError, ValueError) as exc:
        dead = attempts >= current_app.config.get("OUTBOX_SMS_MAX_ATTEMPTS", 8)
        delay = None if dead else retry_delay(attempts)
        status = OutboxMessage.DEAD if dead else OutboxMessage.FAILED
        outbox.finish(session, message_id, lease, status=status, last_error=str(exc)[:500],
                      next_attempt_at=utcnow() + timedelta(seconds=delay or 0))
        session.commit()
        log.warning("SMS %s for package %s not sent (attempt %s): %s", uuid, package_id, attempts, exc)
        return outbox.Outcome(message_id, status, delay)
    def record_sent() -> bool:
        """Mark it sent (commits); nothing to keep once the customer has it: the body may hold a pickup code."""
        ours = outbox.finish(session, message_id, lease, status=OutboxMessage.SENT, sent_at=utcnow(),
                             provider_id=(provider_id or "")[:64], last_error="", body_encrypted=None)
        session.commit()
        return ours

    if not outbox.record_after_send(session, lease, record_sent):
        log.warning("SMS %s was sent but another worker had taken it over (lease ran out)", uuid)
    log.info("SMS %s for package %s sent via %s", uuid, package_id, current_app.config["SMS_PROVIDER"])
    return outbox.Outcome(message_id, OutboxMessage.SENT)
