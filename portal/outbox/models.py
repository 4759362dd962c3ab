"""The outbox: messages (SMS, events) written in the same transaction as the change that causes them."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db


def new_uuid() -> str:
    """A random UUID as text."""
    return str(uuid.uuid4())


UNDELIVERED = "status IN ('pending', 'failed', 'sending')"


class OutboxMessage(db.Model):
    """A message waiting to be sent, sent, or failed.

    kind "sms": payload {"to"}, body_encrypted holds the text (it may carry a pickup code) and is
    wiped once sent. kind "event": payload is the event envelope (the record of what happened).
    kind "webhook": one event for one subscription; payload is the envelope, or body_encrypted holds it
    when it carries a secret (a pickup code in the vendor's extension mode).
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        # The worker's batch claims and fan-outs (portal.outbox.service): the undelivered rows only, by kind in due
        # order, so a claim reads its batch off the index and stops, however long the backlog.
        Index("ix_outbox_due", "kind", "next_attempt_at", sqlite_where=text(UNDELIVERED),
              postgresql_where=text(UNDELIVERED)),
        Index("ix_outbox_package_kind", "package_id", "kind"),
    )

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"
    DISCARDED = "discarded"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    kind: Mapped[str] = mapped_column(String(12))
    event_type: Mapped[str] = mapped_column(String(120), default="")
    package_id: Mapped[int | None] = mapped_column(ForeignKey("packages.id", ondelete="SET NULL"))
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True)
    # The event a webhook message delivers (kind "webhook"), so all deliveries of one event can be found.
    event_uuid: Mapped[str] = mapped_column(String(36), default="", index=True)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    body_encrypted: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default=PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    provider_id: Mapped[str] = mapped_column(String(64), default="")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A worker that claims a message holds it until then; a killed worker's claim simply runs out.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
