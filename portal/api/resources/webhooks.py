"""Webhook subscriptions in the shape of the vendor's /whisperer/hooks/ (brand managers and admins).

A subscription's secret_key appears only in the answers to create and rotate_secret, the only times
it is ever shown.
"""
from __future__ import annotations

from typing import Annotated, Any

from flask import Response, jsonify
from flask_babel import gettext as _
from pydantic import BeforeValidator, Field, field_validator
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import select

from portal.api.auth import caller
from portal.api.operations import Access, operation
from portal.api.schemas import Answer, Body, Query, Timestamp, digits, optional
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.outbox.models import OutboxMessage
from portal.webhooks import catalogue, retry
from portal.webhooks import service as webhooks

MAX_LOG = 200
WRITABLE = ("event_type", "target_url", "retry_countdown_config", "additional_headers", "is_active")
_EVENT_TYPES: dict[str, Any] = {"enum": [catalogue.WILDCARD, *catalogue.EVENT_TYPES]}
_SECONDS: dict[str, Any] = {"minimum": 0}
# Retry fields the domain names bare, reported by their place in the body.
RENAMES = {name: f"retry_countdown_config.{name}" for name in ("type", "interval", "increment", "base", "factor",
                                                                "max_interval", "min", "max", "max_attempts")}


class RetryConfig(Body):
    """How long to wait before each retry; after max_attempts the delivery is dead-lettered."""

    type: str = Field(max_length=32, json_schema_extra={"enum": list(retry.TYPES)})
    interval: float | None = Field(None, json_schema_extra=_SECONDS, description="fixed, linear: seconds.")
    increment: float | None = Field(None, json_schema_extra=_SECONDS,
                                    description="linear: seconds added to each next wait.")
    base: float | None = Field(None, json_schema_extra=_SECONDS, description="exponential: the first wait.")
    factor: float | None = Field(None, description="exponential: multiplier (1 to 10).")
    max_interval: float | None = Field(None, json_schema_extra=_SECONDS, description="exponential: the longest wait.")
    min: float | None = Field(None, json_schema_extra=_SECONDS, description="random: the shortest wait.")
    max: float | None = Field(None, json_schema_extra=_SECONDS, description="random: the longest wait.")
    max_attempts: int | None = Field(None, description=f"1 to {retry.MAX_ATTEMPTS_LIMIT} (default "
                                                       f"{retry.DEFAULT_MAX_ATTEMPTS}).")


class Subscription(Answer):
    """A webhook subscription (never its secret)."""

    id: int
    event_type: str = Field(description="An event type, or * for every event.")
    target_url: str = Field(json_schema_extra={"format": "uri"})
    retry_countdown_config: dict[str, Any]
    additional_headers: dict[str, str]
    is_active: bool
    disabled_reason: str | None = Field(description="Why delivery stopped (e.g. the receiver answered 410), or null.")
    created_at: Timestamp | None
    updated_at: Timestamp | None

    @classmethod
    def fields_of(cls, subscription) -> dict:
        """The fields of a subscription row."""
        return dict(id=subscription.id, event_type=subscription.event_type, target_url=subscription.target_url,
                    retry_countdown_config=subscription.retry_countdown_config or {},
                    additional_headers=subscription.additional_headers or {}, is_active=subscription.is_active,
                    disabled_reason=subscription.disabled_reason or None, created_at=subscription.created_at,
                    updated_at=subscription.updated_at)

    @classmethod
    def of(cls, subscription) -> Subscription:
        """A subscription row as the API shows it."""
        return cls(**cls.fields_of(subscription))


class SubscriptionWithSecret(Subscription):
    """A subscription with its signing secret, shown only in this answer: store it now."""

    secret_key: str = Field(description="The signing secret (whsec_...).")


class Delivery(Answer):
    """One event's delivery to a subscription; webhook_id is the webhook-id header."""

    id: int
    webhook_id: str = Field(description="The webhook-id header; the same on every retry and redelivery.")
    event_type: str
    event_uuid: str
    status: str = Field(json_schema_extra={"enum": ["pending", "sending", "sent", "failed", "dead", "discarded"]})
    attempts: int
    last_error: str | None
    created_at: Timestamp | None
    sent_at: Timestamp | None


class Attempt(Answer):
    """One HTTP attempt of a delivery, with the event it carried."""

    id: int
    delivery: int = Field(description="The delivery's id.")
    webhook_id: str | None
    event_type: str | None
    delivery_status: str | None = Field(description="The delivery's status now.")
    attempt: int = Field(description="1 for the first try.")
    started_at: Timestamp | None
    status_code: int | None = Field(description="null when no answer came.")
    duration_ms: int
    response_excerpt: str
    error: str | None
    succeeded: bool


class Redelivered(Answer):
    """How many dead-lettered events were queued again."""

    redelivered: int


class SubscriptionFields(Body):
    """The writable fields of a subscription; secret_key is refused (use rotate_secret)."""

    event_type: str = optional(max_length=200, json_schema_extra=_EVENT_TYPES)
    target_url: str = optional(max_length=2000, json_schema_extra={"format": "uri"},
                            description="http:// or https://. Loopback, private, link-local and metadata addresses "
                                        "are refused.")
    retry_countdown_config: RetryConfig = optional(description="Left out: exponential, 30 s doubling up to 6 h.")
    additional_headers: dict[str, str] = optional(description="Sent with every delivery; names the portal sets "
                                                                 "itself are refused.")
    is_active: bool = optional(description="true also clears disabled_reason and the failure count.")
    secret_key: SkipJsonSchema[Any] = None

    @field_validator("secret_key")
    @classmethod
    def _refuse_secret(cls, value: Any) -> Any:
        """The portal makes secrets; a client may not choose one."""
        raise ValueError(_("secret_key is made by the portal; use rotate_secret to get a new one."))

    def changes(self) -> dict:
        """The writable fields sent, as the domain takes them."""
        return self.model_dump(include=set(WRITABLE) & self.model_fields_set, exclude_unset=True)


class NewSubscription(SubscriptionFields):
    """A new subscription."""

    event_type: str = Field(max_length=200, json_schema_extra=_EVENT_TYPES)
    target_url: str = Field(max_length=2000, json_schema_extra={"format": "uri"})


class SubscriptionPatch(SubscriptionFields):
    """Fields to change; read-only fields of an answer sent back are ignored."""

    id: int | None = Field(None, json_schema_extra={"readOnly": True})
    disabled_reason: str | None = Field(None, json_schema_extra={"readOnly": True})
    created_at: str | None = Field(None, json_schema_extra={"readOnly": True})
    updated_at: str | None = Field(None, json_schema_extra={"readOnly": True})


LogLimit = Annotated[int, BeforeValidator(digits), Field(ge=1, le=MAX_LOG)]


class DeliveryLogQuery(Query):
    """How many attempts to list."""

    limit: LogLimit | None = Field(None, description="How many attempts (default 50).")


def _no_store(response: Response) -> Response:
    """An answer that carries a secret: no cache may keep it."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _with_secret(subscription, secret: str, status: int) -> Response:
    """A subscription with its secret, shown once."""
    body = SubscriptionWithSecret(**Subscription.fields_of(subscription), secret_key=secret)
    response = jsonify(body.model_dump(mode="json"))
    response.status_code = status
    return _no_store(response)


@operation("GET", "/whisperer/hooks/", access=Access.MANAGERS, answer=list[Subscription], tag="webhooks",
           summary="Webhook subscriptions, newest first (brand managers and admins).")
def list_hooks():
    """Every webhook subscription, newest first."""
    return [Subscription.of(s) for s in webhooks.list_subscriptions(db.session)]


@operation("POST", "/whisperer/hooks/", access=Access.MANAGERS, body=NewSubscription,
           answer=SubscriptionWithSecret, status=201, renames=RENAMES, tag="webhooks",
           summary="Subscribe a URL to an event (brand managers and admins).",
           description="The answer carries secret_key, the only time it is shown. Deliveries are signed with it "
                       "(Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature).",
           example={"event_type": "package.status.transitioned", "target_url": "https://erp.example.com/oms-events",
                    "retry_countdown_config": {"type": "linear", "interval": 60, "increment": 60, "max_attempts": 6},
                    "additional_headers": {"X-Brand-Token": "abc123"}, "is_active": True})
def create_hook(body: NewSubscription):
    """Create a subscription; the answer carries its secret_key, this once."""
    subscription, secret = webhooks.create_subscription(db.session, **body.changes(), user_id=caller().user_id)
    return _with_secret(subscription, secret, 201)


@operation("GET", "/whisperer/hooks/<int:hook_id>/", access=Access.MANAGERS, answer=Subscription, errors=("404",),
           tag="webhooks", summary="One subscription (never its secret).")
def show_hook(hook_id: int):
    """One subscription (without its secret)."""
    return Subscription.of(webhooks.get_subscription(db.session, hook_id))


@operation("PATCH", "/whisperer/hooks/<int:hook_id>/", access=Access.MANAGERS, body=SubscriptionPatch,
           answer=Subscription, errors=("404",), renames=RENAMES, tag="webhooks",
           summary="Change some fields of a subscription.",
           description="Read-only fields sent back (id, disabled_reason, created_at, updated_at) are ignored; "
                       "secret_key cannot be set (use rotate_secret).")
def update_hook(hook_id: int, body: SubscriptionPatch):
    """Change some fields of a subscription; is_active true also clears why it was disabled."""
    fields = body.changes()
    if not fields:
        raise ValidationFailed(_("Give at least one field to change: %(fields)s.", fields=", ".join(WRITABLE)))
    subscription = webhooks.update_subscription(db.session, hook_id, user_id=caller().user_id, **fields)
    return Subscription.of(subscription)


@operation("DELETE", "/whisperer/hooks/<int:hook_id>/", access=Access.MANAGERS, status=204, errors=("404",),
           tag="webhooks", summary="Delete a subscription with its undelivered events and its delivery log.")
def delete_hook(hook_id: int):
    """Delete a subscription, its undelivered events and its delivery log."""
    webhooks.delete_subscription(db.session, hook_id, user_id=caller().user_id)


@operation("POST", "/whisperer/hooks/<int:hook_id>/rotate_secret/", access=Access.MANAGERS,
           answer=SubscriptionWithSecret, errors=("404",), tag="webhooks",
           summary="Make a new secret; the old one stops working at once.")
def rotate_hook_secret(hook_id: int):
    """Replace the secret; the answer carries the new secret_key, this once."""
    secret = webhooks.rotate_secret(db.session, hook_id, user_id=caller().user_id)
    return _with_secret(webhooks.get_subscription(db.session, hook_id), secret, 200)


@operation("POST", "/whisperer/hooks/<int:hook_id>/test/", access=Access.MANAGERS, answer=Delivery, status=202,
           errors=("404",), tag="webhooks",
           summary="Send a webhook.test event to this subscription (even a switched-off one).",
           description="A test gets one attempt and no retries; its outcome appears in the deliveries.")
def test_hook(hook_id: int):
    """Queue a webhook.test event for this subscription."""
    message = webhooks.send_test_event(db.session, hook_id, user_id=caller().user_id)
    return Delivery(id=message.id, webhook_id=message.uuid, event_type=message.event_type,
                    event_uuid=message.event_uuid, status=message.status, attempts=message.attempts,
                    last_error=message.last_error or None, created_at=message.created_at, sent_at=message.sent_at)


@operation("GET", "/whisperer/hooks/<int:hook_id>/deliveries/", access=Access.MANAGERS, query=DeliveryLogQuery,
           answer=list[Attempt], errors=("404",), tag="webhooks",
           summary="The delivery log: time, attempt, status code, duration and a response excerpt.")
def list_hook_deliveries(hook_id: int, query: DeliveryLogQuery):
    """The delivery log: the latest attempts, newest first."""
    attempts = webhooks.delivery_log(db.session, hook_id, limit=query.limit or 50)
    ids = {a.message_id for a in attempts}
    messages = {m.id: m for m in db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.id.in_(ids)))} if ids else {}

    def attempt(row) -> Attempt:
        """One attempt with the event it carried."""
        message = messages.get(row.message_id)
        return Attempt(id=row.id, delivery=row.message_id, webhook_id=message.uuid if message else None,
                       event_type=message.event_type if message else None,
                       delivery_status=message.status if message else None, attempt=row.attempt,
                       started_at=row.started_at, status_code=row.status_code, duration_ms=row.duration_ms,
                       response_excerpt=row.response_excerpt or "", error=row.error or None,
                       succeeded=row.succeeded)

    return [attempt(a) for a in attempts]


@operation("POST", "/whisperer/hooks/<int:hook_id>/redeliver_dead/", access=Access.MANAGERS, answer=Redelivered,
           errors=("404",), tag="webhooks",
           summary="Deliver every dead-lettered event of the subscription again, with the same webhook-id.")
def redeliver_dead_hooks(hook_id: int):
    """Deliver again every dead-lettered event of the subscription (same webhook-id)."""
    return Redelivered(redelivered=webhooks.redeliver_dead(db.session, hook_id, user_id=caller().user_id))
