"""Webhook subscriptions for brand managers: create, change, rotate secrets, test, redeliver, inspect.

Every function takes a database session, commits its own change, and raises ValidationFailed or
NotFound (portal.errors). Every change is audited (area "webhook_subscription", never the secret).
The secret is generated here and returned in plaintext exactly once (on create and on rotate).
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from portal import crypto
from portal.db_types import plain_int, rowcount, utcnow
from portal.errors import NotFound, ValidationFailed
from portal.outbox import service as outbox
from portal.outbox.models import OutboxMessage
from portal.settings import service as settings
from portal.webhooks import catalogue, coverage, inspector, retry, signing, ssrf
from portal.webhooks.models import DeliveryAttempt, WebhookSubscription

AUDIT_AREA = "webhook_subscription"
# Headers the portal sets itself; additional headers may not replace them.
RESERVED_HEADERS = frozenset({
    "content-type", "content-length", "content-encoding", "transfer-encoding", "host", "connection",
    "user-agent", signing.ID_HEADER, signing.TIMESTAMP_HEADER, signing.SIGNATURE_HEADER,
})
MAX_HEADERS = 20
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # an HTTP header name (RFC 9110 token)
EDITABLE = frozenset({"event_type", "target_url", "retry_countdown_config", "additional_headers", "is_active"})


def _audit(session: Session, subscription_id: int, action: str, user_id: int | None) -> None:
    """Record who did what to a subscription (not committed)."""
    settings.audit(session, key=f"subscription:{subscription_id}", area=AUDIT_AREA, action=action,
                   user_id=user_id)


def validate_event_type(event_type: object) -> str:
    """An event type from the catalogue or the wildcard "*". Raises ValidationFailed."""
    if not isinstance(event_type, str) or not catalogue.is_known(event_type.strip()):
        raise ValidationFailed(_("Choose an event type from the catalogue, or * for every event."), field="event_type")
    return event_type.strip()


def validate_target(url: object) -> str:
    """A target URL that passes the SSRF checks (private targets only when the config allows them).

    The built-in inspector's exact URL passes too while the inspector is on (development and the demo).
    """
    if inspector.is_inspector_url(url, current_app.config):
        return str(url).strip()
    return ssrf.validate_target_url(url, bool(current_app.config.get("WEBHOOK_ALLOW_PRIVATE_TARGETS")))


class DuplicateSubscription(ValidationFailed):
    """The same event already goes to the same URL; `existing` is that subscription's id."""

    def __init__(self, message: str, existing: int):
        super().__init__(message, field="target_url")
        self.existing = existing


def find_duplicate(session: Session, event_type: str, target_url: str,
                   exclude_id: int | None = None) -> WebhookSubscription | None:
    """A subscription that already sends this event type to this URL (the oldest), if any."""
    stmt = (select(WebhookSubscription)
            .where(WebhookSubscription.event_type == event_type, WebhookSubscription.target_url == target_url)
            .order_by(WebhookSubscription.id).limit(1))
    if exclude_id is not None:
        stmt = stmt.where(WebhookSubscription.id != exclude_id)
    return session.scalar(stmt)


def validate_headers(raw: object) -> dict[str, str]:
    """Additional headers as {name: value}; accepts a dict, a list of {name|key, value}, or JSON text.

    Names must be HTTP tokens and may not be ones the portal sets (content-type, webhook-*, ...);
    values are one line of printable ASCII (HTTP cannot carry "İstanbul" in a header). Raises ValidationFailed
    (field additional_headers).
    """
    def refuse(message: str):
        """Raise the validation error for the headers."""
        raise ValidationFailed(message, field="additional_headers")

    if raw in (None, "", [], {}):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            refuse(_('Additional headers must be a JSON object like {"Authorization": "Bearer ..."}.'))
    if isinstance(raw, list):
        pairs = []
        for item in raw:
            if not isinstance(item, Mapping):
                refuse(_("Each additional header needs a name and a value."))
            pairs.append((item.get("name", item.get("key")), item.get("value")))
    elif isinstance(raw, Mapping):
        pairs = list(raw.items())
    else:
        refuse(_("Additional headers must be an object of name: value."))
    headers: dict[str, str] = {}
    for name, value in pairs:
        name = name.strip() if isinstance(name, str) else name
        if name in (None, "") and value in (None, ""):
            continue  # an empty row of the form
        if not isinstance(name, str) or not _TOKEN.match(name) or len(name) > 100:
            refuse(_("%(name)r is not a valid header name.", name=name))
        if name.lower() in RESERVED_HEADERS:
            refuse(_("The portal sets %(name)s itself; it cannot be an additional header.", name=name))
        if any(existing.lower() == name.lower() for existing in headers):
            refuse(_("The header %(name)s is given twice.", name=name))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or any(ch in value for ch in "\r\n\0") or len(value) > 4000:
            refuse(_("The value of %(name)s must be one line of text (at most 4000 characters).", name=name))
        odd = next((ch for ch in value if not " " <= ch <= "~" and ch != "\t"), None)
        if odd is not None:
            # http.client can only send Latin-1, and receivers read anything past ASCII differently.
            refuse(_("The value of %(name)s has a character HTTP headers cannot carry (%(char)s): use plain ASCII "
                     "letters, digits and punctuation, or percent-encode the value.", name=name, char=odd))
        headers[name] = value.strip()
    if len(headers) > MAX_HEADERS:
        refuse(_("At most %(num)s additional headers.", num=MAX_HEADERS))
    return headers


def _validate_active(value: object) -> bool:
    """is_active must be a real boolean."""
    if not isinstance(value, bool):
        raise ValidationFailed(_("is_active must be true or false."), field="is_active")
    return value


def list_subscriptions(session: Session) -> list[WebhookSubscription]:
    """Every subscription, newest first."""
    return list(session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id.desc())))


def get_subscription(session: Session, subscription_id: object) -> WebhookSubscription:
    """One subscription. Raises NotFound."""
    row_id = plain_int(subscription_id)
    subscription = session.get(WebhookSubscription, row_id) if row_id is not None else None
    if subscription is None:
        raise NotFound(_("No such webhook subscription."))
    return subscription


def secret_of(subscription: WebhookSubscription) -> str:
    """The subscription's signing secret in plaintext (for signing only; never show or log it)."""
    return crypto.decrypt(subscription.secret_encrypted)


def create_subscription(session: Session, *, event_type: object, target_url: object,
                        retry_countdown_config: object = None, additional_headers: object = None,
                        is_active: bool = True, user_id: int | None,
                        allow_duplicate: bool = False) -> tuple[WebhookSubscription, str]:
    """Validate and save a subscription with a new secret; returns it and the secret (shown once).

    The same event to the same URL twice is refused with DuplicateSubscription (naming the existing one)
    unless allow_duplicate: a receiver would get every event twice.
    """
    event, target = validate_event_type(event_type), validate_target(target_url)
    values = {
        "event_type": event,
        "target_url": target,
        "retry_countdown_config": retry.validate_retry_config(retry_countdown_config),
        "additional_headers": validate_headers(additional_headers),
        "is_active": _validate_active(is_active),
    }
    existing = find_duplicate(session, event, target)
    if existing is not None and not allow_duplicate:
        raise DuplicateSubscription(
            _("Subscription %(id)s already sends this event to this URL: the receiver would get every event twice.",
              id=existing.id), existing.id)
    secret = signing.generate_secret()
    subscription = WebhookSubscription(**values, secret_encrypted=crypto.encrypt(secret), created_by_id=user_id,
                                       disabled_reason="", consecutive_failures=0)
    if not values["is_active"]:
        subscription.disabled_at = utcnow()
    session.add(subscription)
    session.flush()
    _audit(session, subscription.id, "create", user_id)
    coverage.refresh_step(session, user_id=user_id)  # step 12 follows the subscriptions
    session.commit()
    return subscription, secret


def update_subscription(session: Session, subscription_id: object, *, user_id: int | None,
                        **fields) -> WebhookSubscription:
    """Change some of event_type, target_url, retry_countdown_config, additional_headers, is_active."""
    subscription = get_subscription(session, subscription_id)
    unknown = sorted(set(fields) - EDITABLE)
    if unknown:
        raise ValidationFailed(_("%(unknown)s cannot be changed here.", unknown=unknown[0]), field=unknown[0])
    cleaned: dict = {}
    if "event_type" in fields:
        cleaned["event_type"] = validate_event_type(fields["event_type"])
    if "target_url" in fields:
        # An unchanged URL is kept as it is: it is checked again on every connection anyway.
        unchanged = isinstance(fields["target_url"], str) and fields["target_url"].strip() == subscription.target_url
        cleaned["target_url"] = subscription.target_url if unchanged else validate_target(fields["target_url"])
    if "retry_countdown_config" in fields:
        cleaned["retry_countdown_config"] = retry.validate_retry_config(fields["retry_countdown_config"])
    if "additional_headers" in fields:
        cleaned["additional_headers"] = validate_headers(fields["additional_headers"])
    if "is_active" in fields:
        _apply_active(subscription, _validate_active(fields["is_active"]))
    for key, value in cleaned.items():
        setattr(subscription, key, value)
    subscription.updated_at = utcnow()
    _audit(session, subscription.id, "update", user_id)
    coverage.refresh_step(session, user_id=user_id)  # step 12 follows the subscriptions
    session.commit()
    return subscription


def _apply_active(subscription: WebhookSubscription, active: bool) -> None:
    """Switch on (forgetting why it was off and its failure count) or off (by hand)."""
    if active and not subscription.is_active:
        subscription.disabled_reason, subscription.disabled_at, subscription.consecutive_failures = "", None, 0
    elif not active and subscription.is_active:
        subscription.disabled_reason, subscription.disabled_at = _("Switched off by a user."), utcnow()
    subscription.is_active = active


def set_active(session: Session, subscription_id: object, active: bool, *, user_id: int | None) -> WebhookSubscription:
    """Switch a subscription on or off; switching on clears disabled_reason and consecutive_failures."""
    subscription = get_subscription(session, subscription_id)
    _apply_active(subscription, _validate_active(active))
    subscription.updated_at = utcnow()
    _audit(session, subscription.id, "enable" if active else "disable", user_id)
    coverage.refresh_step(session, user_id=user_id)  # step 12 follows the subscriptions
    session.commit()
    return subscription


def rotate_secret(session: Session, subscription_id: object, *, user_id: int | None) -> str:
    """Give a subscription a new secret (the old one stops working at once); returns it, shown once."""
    subscription = get_subscription(session, subscription_id)
    secret = signing.generate_secret()
    subscription.secret_encrypted = crypto.encrypt(secret)
    subscription.updated_at = utcnow()
    _audit(session, subscription.id, "rotate_secret", user_id)
    session.commit()
    return secret


def delete_subscription(session: Session, subscription_id: object, *, user_id: int | None) -> None:
    """Delete a subscription with its undelivered messages and its delivery log."""
    subscription = get_subscription(session, subscription_id)
    sid = subscription.id
    session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.subscription_id == sid))
    session.execute(delete(OutboxMessage).where(OutboxMessage.subscription_id == sid))
    session.delete(subscription)
    _audit(session, sid, "delete", user_id)
    coverage.refresh_step(session, user_id=user_id)  # step 12 follows the subscriptions
    session.commit()


def send_test_event(session: Session, subscription_id: object, *, user_id: int | None) -> OutboxMessage:
    """Queue a webhook.test event to this one subscription (even a switched-off one) and send it.

    A test gets one attempt and no retries; its outcome is in the delivery log. In immediate mode
    (tests) it has been delivered when this returns.
    """
    subscription = get_subscription(session, subscription_id)
    payload = {"subscription": {"id": subscription.id, "event_type": subscription.event_type},
               "message": "This is a test event from the OMS Portal.", "sent_at": utcnow().isoformat()}
    message = outbox.enqueue_webhook(session, subscription.id, catalogue.WEBHOOK_TEST, payload)
    _audit(session, subscription.id, "send_test_event", user_id)
    session.commit()
    message_id = message.id
    outbox.deliver_after_commit(session, [message_id])
    session.refresh(message)  # the delivery ran in its own transaction: read its outcome
    return message


def send_sample(session: Session, subscription_id: object, event_type: object, payload: dict, *,
                user_id: int | None) -> OutboxMessage:
    """Send one sample event of a type this subscription receives (payload: a made-up package's), once.

    Like a test event it gets one attempt and no retries (its payload says "sample": true); a type the
    subscription does not receive is refused.
    """
    subscription = get_subscription(session, subscription_id)
    if not isinstance(event_type, str) or event_type not in catalogue.EVENT_TYPES or (
            subscription.event_type not in (catalogue.WILDCARD, event_type)):
        raise ValidationFailed(_("This subscription does not receive that event."), field="event_type")
    message = outbox.enqueue_webhook(session, subscription.id, event_type, {**payload, "sample": True},
                                     vendor_name=catalogue.VENDOR_NAMES.get(event_type, ""))
    _audit(session, subscription.id, "send_sample", user_id)
    session.commit()
    outbox.deliver_after_commit(session, [message.id])
    session.refresh(message)  # the delivery ran in its own transaction: read its outcome
    return message


def is_trial(message: OutboxMessage | outbox.Claimed) -> bool:
    """True for a test event or a sample: sent once, never retried, never counted against the subscription."""
    data = message.payload.get("payload") if isinstance(message.payload, dict) else None
    return message.event_type == catalogue.WEBHOOK_TEST or (isinstance(data, dict) and data.get("sample") is True)


def _webhook_message(session: Session, message_id: object) -> OutboxMessage:
    """A webhook message. Raises NotFound."""
    row_id = plain_int(message_id)
    message = session.get(OutboxMessage, row_id) if row_id is not None else None
    if message is None or message.kind != outbox.WEBHOOK:
        raise NotFound(_("No such webhook delivery."))
    return message


def redeliver(session: Session, message_id: object, *, user_id: int | None) -> OutboxMessage:
    """Send one webhook message again (same webhook-id), with a fresh set of attempts."""
    message = _webhook_message(session, message_id)
    if message.status == OutboxMessage.SENDING and message.lease_until and message.lease_until > utcnow():
        raise ValidationFailed(_("This delivery is being sent right now."))
    subscription_id = message.subscription_id
    assert subscription_id is not None  # a webhook message belongs to its subscription (deleted with it)
    outbox.requeue(message)
    _audit(session, subscription_id, "redeliver", user_id)
    session.commit()
    outbox.deliver_after_commit(session, [message.id])
    session.refresh(message)  # the delivery ran in its own transaction: read its outcome
    return message


def redeliver_dead(session: Session, subscription_id: object, *, user_id: int | None) -> int:
    """Send every dead-lettered message of a subscription again; returns how many."""
    subscription = get_subscription(session, subscription_id)
    messages = dead_messages(session, subscription.id, limit=None)
    for message in messages:
        outbox.requeue(message)
    ids = [m.id for m in messages]
    _audit(session, subscription.id, "redeliver_dead", user_id)
    session.commit()
    outbox.deliver_after_commit(session, ids)
    return len(ids)


def delivery_log(session: Session, subscription_id: object, limit: int = 50) -> list[DeliveryAttempt]:
    """The subscription's latest delivery attempts, newest first."""
    subscription = get_subscription(session, subscription_id)
    return list(session.scalars(
        select(DeliveryAttempt).where(DeliveryAttempt.subscription_id == subscription.id)
        .order_by(DeliveryAttempt.id.desc()).limit(limit)))


def dead_messages(session: Session, subscription_id: object, limit: int | None = 100) -> list[OutboxMessage]:
    """The subscription's dead-lettered messages, newest first."""
    subscription = get_subscription(session, subscription_id)
    stmt = (select(OutboxMessage)
            .where(OutboxMessage.subscription_id == subscription.id, OutboxMessage.kind == outbox.WEBHOOK,
                   OutboxMessage.status == OutboxMessage.DEAD)
            .order_by(OutboxMessage.id.desc()))
    return list(session.scalars(stmt.limit(limit) if limit else stmt))


def pending_messages(session: Session, subscription_id: object, limit: int = 100) -> list[OutboxMessage]:
    """The subscription's messages not delivered yet (pending, being sent, or failed and waiting), oldest first."""
    subscription = get_subscription(session, subscription_id)
    return list(session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.subscription_id == subscription.id, OutboxMessage.kind == outbox.WEBHOOK,
               OutboxMessage.status.in_([OutboxMessage.PENDING, OutboxMessage.SENDING, OutboxMessage.FAILED]))
        .order_by(OutboxMessage.id).limit(limit)))


def subscription_counts(session: Session, subscription_id: object) -> dict[str, int]:
    """{status: count} of one subscription's messages."""
    subscription = get_subscription(session, subscription_id)
    rows = session.execute(
        select(OutboxMessage.status, func.count()).where(OutboxMessage.subscription_id == subscription.id)
        .group_by(OutboxMessage.status))
    return {status: count for status, count in rows}


def outbox_summary(session: Session) -> dict[str, dict[str, int]]:
    """{kind: {status: count}} over the whole outbox (sms, event, webhook)."""
    summary: dict[str, dict[str, int]] = {}
    rows = session.execute(select(OutboxMessage.kind, OutboxMessage.status, func.count())
                           .group_by(OutboxMessage.kind, OutboxMessage.status))
    for kind, status, count in rows:
        summary.setdefault(kind, {})[status] = count
    return summary


def disable(session: Session, subscription_id: int, reason: str) -> bool:
    """Switch a subscription off because of its deliveries (not committed); False when it already was off."""
    return rowcount(session.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id, WebhookSubscription.is_active.is_(True))
        .values(is_active=False, disabled_reason=reason[:2000], disabled_at=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )) == 1
