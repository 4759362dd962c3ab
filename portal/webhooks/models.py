"""Webhook subscriptions of brand managers, and the log of every delivery attempt."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db


class WebhookSubscription(db.Model):
    """A target URL that receives one event type (or every event: "*"), signed with its own secret."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (Index("ix_webhook_subscriptions_event_active", "event_type", "is_active"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(String(80))
    target_url: Mapped[str] = mapped_column(String(2000))
    # {"type": "fixed"|"linear"|"exponential"|"random", ...parameters, "max_attempts": n}
    retry_countdown_config: Mapped[dict] = mapped_column(JSON, default=dict)
    additional_headers: Mapped[dict] = mapped_column(JSON, default=dict)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str] = mapped_column(Text, default="")
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DeliveryAttempt(db.Model):
    """One HTTP attempt to deliver an outbox message to a subscription: when, status, duration, excerpt."""

    __tablename__ = "webhook_delivery_attempts"
    __table_args__ = (
        Index("ix_delivery_attempts_subscription_id", "subscription_id", "id"),
        Index("ix_delivery_attempts_message_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox_messages.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column()
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status_code: Mapped[int | None] = mapped_column()
    duration_ms: Mapped[int] = mapped_column(default=0)
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    succeeded: Mapped[bool] = mapped_column(default=False)

    subscription: Mapped[WebhookSubscription] = relationship()


class InspectedRequest(db.Model):
    """A request the built-in inspector received (development and the demo only), newest kept, older dropped.

    The headers and body are kept encrypted (a delivery in extension mode carries a pickup code); the
    signature verdict is worked out when the request arrives, with the sending subscription's secret.
    """

    __tablename__ = "webhook_inspected_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    method: Mapped[str] = mapped_column(String(10))
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="SET NULL"), index=True)
    webhook_id: Mapped[str] = mapped_column(String(200), default="")
    event_type: Mapped[str] = mapped_column(String(120), default="")
    # {"headers": [[name, value], ...], "body": text}, encrypted with portal.crypto.
    content_encrypted: Mapped[str] = mapped_column(Text)
    verdict: Mapped[str] = mapped_column(String(24))
    verdict_detail: Mapped[str] = mapped_column(String(200), default="")
