"""The built-in request inspector: a receiver inside the portal, for development and the demo.

A subscription may target the inspector's URL (WEBHOOK_INSPECTOR_URL), and only that exact URL is let past
the SSRF guard, at save time and on connection; every other loopback or private address stays refused.
Each request it receives is kept as received (method, headers, body, encrypted), with the verdict of the
signature check made with the secret of the subscription that sent it (found by its webhook-id). Only the
newest KEEP requests are kept. In production (ENV_NAME "production") the inspector does not exist.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.db_types import plain_int, utcnow
from portal.outbox.models import OutboxMessage
from portal.webhooks import signing
from portal.webhooks.models import InspectedRequest, WebhookSubscription

KEEP = 200
MAX_BODY_CHARS = 100_000
# The request's webhook-id names no delivery of this portal: no subscription's secret to check it with.
UNKNOWN_SENDER = "unknown_sender"


def enabled(config: Mapping) -> bool:
    """True when the inspector runs: switched on (WEBHOOK_INSPECTOR) and never in production."""
    return bool(config.get("WEBHOOK_INSPECTOR")) and config.get("ENV_NAME") != "production"


def url(config: Mapping) -> str | None:
    """The inspector's receiving URL, or None when the inspector is off."""
    if not enabled(config):
        return None
    return str(config.get("WEBHOOK_INSPECTOR_URL") or "").strip() or None


def is_inspector_url(target: object, config: Mapping) -> bool:
    """True when target is exactly the inspector's URL and the inspector is on."""
    own = url(config)
    return own is not None and isinstance(target, str) and target.strip() == own


@dataclass
class Received:
    """One received request as the inspector shows it."""

    id: int
    received_at: datetime
    method: str
    subscription_id: int | None
    webhook_id: str
    event_type: str
    headers: list[tuple[str, str]]
    body: str
    verdict: str
    verdict_detail: str

    @property
    def valid(self) -> bool:
        """True when the signature checked out."""
        return self.verdict == signing.VALID

    @property
    def pretty_body(self) -> str:
        """The body as indented JSON when it is JSON, else as received."""
        try:
            return json.dumps(json.loads(self.body), indent=2, ensure_ascii=False, sort_keys=False)
        except ValueError:
            return self.body


def _sender(session: Session, webhook_id: str) -> tuple[WebhookSubscription | None, str]:
    """The subscription that sent the webhook message with this id, and the message's event type."""
    if not webhook_id:
        return None, ""
    row = session.execute(
        select(OutboxMessage.subscription_id, OutboxMessage.event_type)
        .where(OutboxMessage.uuid == webhook_id[:36], OutboxMessage.kind == "webhook")).first()
    if row is None or row[0] is None:
        return None, ""
    return session.get(WebhookSubscription, row[0]), row[1]


def receive(session: Session, method: str, headers: list[tuple[str, str]], body: bytes) -> InspectedRequest:
    """Keep one received request with its signature verdict, drop the oldest beyond KEEP, and commit."""
    text = body.decode("utf-8", errors="replace")[:MAX_BODY_CHARS]
    # Header names are case-insensitive and WSGI does not keep the sender's case: kept in lower case, as HTTP/2 does.
    headers = [(name.lower(), value) for name, value in headers]
    lookup = dict(headers)
    webhook_id = lookup.get(signing.ID_HEADER, "").strip()
    subscription, event_type = _sender(session, webhook_id)
    now = utcnow()
    if subscription is None:
        verdict, detail = (UNKNOWN_SENDER, webhook_id[:200]) if webhook_id else (signing.MISSING_HEADER,
                                                                                 signing.ID_HEADER)
    else:
        try:
            secret = crypto.decrypt(subscription.secret_encrypted)
        except ValueError:
            secret = ""
        verdict, detail = signing.check(secret, lookup, body, now=now.timestamp())
    row = InspectedRequest(
        received_at=now, method=method[:10], subscription_id=subscription.id if subscription else None,
        webhook_id=webhook_id[:200], event_type=event_type,
        content_encrypted=crypto.encrypt(json.dumps({"headers": [list(h) for h in headers], "body": text},
                                                    ensure_ascii=False)),
        verdict=verdict, verdict_detail=detail[:200])
    session.add(row)
    session.flush()
    oldest_kept = session.scalar(select(InspectedRequest.id).order_by(InspectedRequest.id.desc())
                                 .offset(KEEP - 1).limit(1))
    if oldest_kept is not None:
        session.execute(delete(InspectedRequest).where(InspectedRequest.id < oldest_kept))
    session.commit()
    return row


def _shown(row: InspectedRequest) -> Received:
    """A stored request, decrypted for the screen (a key dropped since: shown as unreadable)."""
    try:
        content = json.loads(crypto.decrypt(row.content_encrypted))
    except ValueError:
        content = {"headers": [], "body": ""}
    return Received(row.id, row.received_at, row.method, row.subscription_id, row.webhook_id, row.event_type,
                    [(str(n), str(v)) for n, v in content.get("headers", [])], content.get("body", ""),
                    row.verdict, row.verdict_detail)


def received(session: Session, subscription_id: int | None = None, limit: int = 50) -> list[Received]:
    """The requests received, newest first; only one subscription's when subscription_id is given."""
    stmt = select(InspectedRequest).order_by(InspectedRequest.id.desc()).limit(limit)
    if subscription_id is not None:
        stmt = stmt.where(InspectedRequest.subscription_id == subscription_id)
    return [_shown(row) for row in session.scalars(stmt)]


def get(session: Session, request_id: object) -> Received | None:
    """One received request by id, or None."""
    row = session.get(InspectedRequest, plain_int(request_id)) if plain_int(request_id) is not None else None
    return _shown(row) if row is not None else None
