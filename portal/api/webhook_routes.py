"""API routes of webhook subscriptions, in the shape of the vendor's /whisperer/hooks/ (brand managers and admins).

A subscription is {id, event_type, target_url, retry_countdown_config, additional_headers, is_active,
disabled_reason, created_at, updated_at}; secret_key appears only in the answers to create and
rotate_secret, the only times it is ever shown.
"""
from __future__ import annotations


from flask import Response, jsonify, request
from sqlalchemy import select

from portal.accounts.models import Role
from portal.api.body import json_object
from portal.api import bp
from portal.api.auth import caller
from portal.api.serializers import iso_utc
from portal.webhooks.coverage import settle_events_step
from portal.errors import PermissionDenied, ValidationFailed
from portal.extensions import db
from portal.outbox.models import OutboxMessage
from portal.webhooks import catalogue, retry
from portal.webhooks import service as webhooks
from portal.web import plain_int

WRITABLE = ("event_type", "target_url", "retry_countdown_config", "additional_headers", "is_active")
# Fields of the answer a client may send back unchanged; they are ignored, as the vendor's API does.
READ_ONLY = ("id", "disabled_reason", "created_at", "updated_at")
MAX_LOG = 200

# Paths these routes add to the OpenAPI document, merged by portal/api/openapi.py.
OPENAPI_PATHS: dict = {}


def _managers_only() -> None:
    """Raise PermissionDenied unless the caller is a brand manager or an admin."""
    if caller().role not in (Role.ADMIN.value, Role.BRAND_MANAGER.value):
        raise PermissionDenied("Only brand managers and admins may manage webhook subscriptions.")


def _fields(body: dict) -> dict:
    """The writable fields of a body; a secret_key or an unknown field is refused by name."""
    if "secret_key" in body:
        raise ValidationFailed("secret_key is made by the portal; use rotate_secret to get a new one.",
                               field="secret_key")
    unknown = sorted(set(body) - set(WRITABLE) - set(READ_ONLY))
    if unknown:
        raise ValidationFailed(f"Unknown field {unknown[0]!r}; a subscription has {', '.join(WRITABLE)}.",
                               field=unknown[0])
    return {name: body[name] for name in WRITABLE if name in body}


def subscription_json(subscription, secret: str | None = None) -> dict:
    """A subscription as the API shows it; the secret only when it was just made."""
    data = {"id": subscription.id, "event_type": subscription.event_type, "target_url": subscription.target_url,
            "retry_countdown_config": subscription.retry_countdown_config or {},
            "additional_headers": subscription.additional_headers or {}, "is_active": subscription.is_active,
            "disabled_reason": subscription.disabled_reason or None,
            "created_at": iso_utc(subscription.created_at), "updated_at": iso_utc(subscription.updated_at)}
    if secret is not None:
        data["secret_key"] = secret
    return data


def message_json(message: OutboxMessage) -> dict:
    """One event's delivery to a subscription (an outbox message); webhook_id is the webhook-id header."""
    return {"id": message.id, "webhook_id": message.uuid, "event_type": message.event_type,
            "event_uuid": message.event_uuid, "status": message.status, "attempts": message.attempts,
            "last_error": message.last_error or None, "created_at": iso_utc(message.created_at),
            "sent_at": iso_utc(message.sent_at)}


def attempt_json(attempt, message: OutboxMessage | None) -> dict:
    """One HTTP attempt of a delivery, with the event it carried."""
    return {"id": attempt.id, "delivery": attempt.message_id,
            "webhook_id": message.uuid if message else None, "event_type": message.event_type if message else None,
            "delivery_status": message.status if message else None, "attempt": attempt.attempt,
            "started_at": iso_utc(attempt.started_at), "status_code": attempt.status_code,
            "duration_ms": attempt.duration_ms, "response_excerpt": attempt.response_excerpt,
            "error": attempt.error or None, "succeeded": attempt.succeeded}


@bp.get("/whisperer/hooks/")
def list_hooks():
    """Every webhook subscription, newest first."""
    _managers_only()
    return jsonify([subscription_json(s) for s in webhooks.list_subscriptions(db.session)])


@bp.post("/whisperer/hooks/")
def create_hook():
    """Create a subscription; the answer carries its secret_key, this once."""
    _managers_only()
    fields = _fields(json_object())
    user_id = caller().user_id
    subscription, secret = webhooks.create_subscription(db.session, **fields, user_id=user_id)
    settle_events_step(db.session, user_id=user_id)
    response = jsonify(subscription_json(subscription, secret))
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/whisperer/hooks/<int:hook_id>/")
def show_hook(hook_id: int):
    """One subscription (without its secret)."""
    _managers_only()
    return jsonify(subscription_json(webhooks.get_subscription(db.session, hook_id)))


@bp.patch("/whisperer/hooks/<int:hook_id>/")
def update_hook(hook_id: int):
    """Change some fields of a subscription; is_active true also clears why it was disabled."""
    _managers_only()
    fields = _fields(json_object())
    if not fields:
        raise ValidationFailed(f"Give at least one field to change: {', '.join(WRITABLE)}.")
    user_id = caller().user_id
    subscription = webhooks.update_subscription(db.session, hook_id, user_id=user_id, **fields)
    settle_events_step(db.session, user_id=user_id)
    return jsonify(subscription_json(subscription))


@bp.delete("/whisperer/hooks/<int:hook_id>/")
def delete_hook(hook_id: int):
    """Delete a subscription, its undelivered events and its delivery log."""
    _managers_only()
    user_id = caller().user_id
    webhooks.delete_subscription(db.session, hook_id, user_id=user_id)
    settle_events_step(db.session, user_id=user_id)
    return Response(status=204)


@bp.post("/whisperer/hooks/<int:hook_id>/rotate_secret/")
def rotate_hook_secret(hook_id: int):
    """Replace the secret; the answer carries the new secret_key, this once. The old one stops working."""
    _managers_only()
    secret = webhooks.rotate_secret(db.session, hook_id, user_id=caller().user_id)
    response = jsonify(subscription_json(webhooks.get_subscription(db.session, hook_id), secret))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/whisperer/hooks/<int:hook_id>/test/")
def test_hook(hook_id: int):
    """Queue a webhook.test event for this subscription; its outcome shows in the deliveries."""
    _managers_only()
    message = webhooks.send_test_event(db.session, hook_id, user_id=caller().user_id)
    response = jsonify(message_json(message))
    response.status_code = 202
    return response


@bp.get("/whisperer/hooks/<int:hook_id>/deliveries/")
def list_hook_deliveries(hook_id: int):
    """The delivery log: the latest attempts, newest first (?limit=, default 50, at most 200)."""
    _managers_only()
    raw = (request.args.get("limit") or "").strip()
    if raw and not 1 <= (plain_int(raw) or 0) <= MAX_LOG:
        raise ValidationFailed(f"limit must be a number from 1 to {MAX_LOG}.", field="limit")
    attempts = webhooks.delivery_log(db.session, hook_id, limit=int(raw) if raw else 50)
    ids = {a.message_id for a in attempts}
    messages = {m.id: m for m in db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.id.in_(ids)))} if ids else {}
    return jsonify([attempt_json(a, messages.get(a.message_id)) for a in attempts])


@bp.post("/whisperer/hooks/<int:hook_id>/redeliver_dead/")
def redeliver_dead_hooks(hook_id: int):
    """Deliver again every dead-lettered event of the subscription (same webhook-id); says how many."""
    _managers_only()
    count = webhooks.redeliver_dead(db.session, hook_id, user_id=caller().user_id)
    return jsonify({"redelivered": count})


def _openapi_paths() -> dict:
    """OpenAPI paths of the webhook subscription routes."""
    def errors(*codes: str) -> dict:
        """References to the document's shared error responses."""
        names = {"400": "BadRequest", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound",
                 "429": "TooManyRequests"}
        return {code: {"$ref": f"#/components/responses/{names[code]}"} for code in codes}

    def json_response(schema: dict, description: str) -> dict:
        """A response with a JSON body."""
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    event_types = [catalogue.WILDCARD, *catalogue.EVENT_TYPES]
    nullable_string = {"type": ["string", "null"]}
    seconds = {"type": "number", "minimum": 0}
    retry_config = {
        "type": "object", "required": ["type"],
        "description": "How long to wait before each retry. After max_attempts (1 to 25, default "
                       f"{retry.DEFAULT_MAX_ATTEMPTS}) the delivery is dead-lettered. Left out: exponential, "
                       "30 s doubling up to 6 h.",
        "properties": {
            "type": {"type": "string", "enum": list(retry.TYPES)},
            "interval": {**seconds, "description": "fixed, linear: seconds."},
            "increment": {**seconds, "description": "linear: seconds added to each next wait."},
            "base": {**seconds, "description": "exponential: the first wait in seconds."},
            "factor": {"type": "number", "minimum": 1, "maximum": 10, "description": "exponential: multiplier."},
            "max_interval": {**seconds, "description": "exponential: the longest wait in seconds."},
            "min": {**seconds, "description": "random: the shortest wait in seconds."},
            "max": {**seconds, "description": "random: the longest wait in seconds."},
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": retry.MAX_ATTEMPTS_LIMIT},
        },
        "examples": [{"type": "exponential", "base": 30, "factor": 2, "max_interval": 21600, "max_attempts": 8},
                     {"type": "fixed", "interval": 60, "max_attempts": 5}],
    }
    headers = {"type": "object", "additionalProperties": {"type": "string"},
               "description": "Sent with every delivery. Names the portal sets itself (Content-Type, "
                              "webhook-id, webhook-timestamp, webhook-signature, ...) are refused."}
    fields = {
        "event_type": {"type": "string", "enum": event_types, "description": "An event type, or * for every event."},
        "target_url": {"type": "string", "format": "uri", "maxLength": 2000,
                       "description": "http:// or https://. Loopback, private, link-local and metadata addresses "
                                      "are refused."},
        "retry_countdown_config": retry_config,
        "additional_headers": headers,
        "is_active": {"type": "boolean", "description": "true also clears disabled_reason and the failure count."},
    }
    subscription = {
        "type": "object",
        "required": ["id", "event_type", "target_url", "retry_countdown_config", "additional_headers", "is_active",
                     "disabled_reason", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "integer"}, **fields,
            "disabled_reason": {**nullable_string, "description": "Why delivery stopped (e.g. the receiver "
                                                                  "answered 410), or null."},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    }
    with_secret = {"allOf": [subscription, {
        "type": "object", "required": ["secret_key"],
        "properties": {"secret_key": {"type": "string", "description": "The signing secret (whsec_...). Shown "
                                                                       "only in this answer: store it now."}}}]}
    delivery = {"type": "object",
                "required": ["id", "webhook_id", "event_type", "event_uuid", "status", "attempts", "last_error",
                             "created_at", "sent_at"],
                "properties": {
                    "id": {"type": "integer"},
                    "webhook_id": {"type": "string", "description": "The webhook-id header; the same on every "
                                                                    "retry and redelivery."},
                    "event_type": {"type": "string"}, "event_uuid": {"type": "string"},
                    "status": {"type": "string", "enum": ["pending", "sending", "sent", "failed", "dead",
                                                          "discarded"]},
                    "attempts": {"type": "integer"}, "last_error": nullable_string,
                    "created_at": {"type": "string", "format": "date-time"},
                    "sent_at": {**nullable_string, "format": "date-time"}}}
    attempt = {"type": "object",
               "required": ["id", "delivery", "webhook_id", "event_type", "delivery_status", "attempt", "started_at",
                            "status_code", "duration_ms", "response_excerpt", "error", "succeeded"],
               "properties": {
                   "id": {"type": "integer"}, "delivery": {"type": "integer", "description": "The delivery's id."},
                   "webhook_id": nullable_string, "event_type": nullable_string,
                   "delivery_status": {**nullable_string, "description": "The delivery's status now."},
                   "attempt": {"type": "integer", "description": "1 for the first try."},
                   "started_at": {"type": "string", "format": "date-time"},
                   "status_code": {"type": ["integer", "null"], "description": "null when no answer came."},
                   "duration_ms": {"type": "integer"}, "response_excerpt": {"type": "string"},
                   "error": nullable_string, "succeeded": {"type": "boolean"}}}
    hook_id = {"name": "hook_id", "in": "path", "required": True, "schema": {"type": "integer"},
               "description": "The subscription's id."}
    create_body = {"type": "object", "required": ["event_type", "target_url"], "properties": fields}
    example = {"event_type": "package.status.transitioned", "target_url": "https://erp.example.com/oms-events",
               "retry_countdown_config": {"type": "linear", "interval": 60, "increment": 60, "max_attempts": 6},
               "additional_headers": {"X-Brand-Token": "abc123"}, "is_active": True}
    return {
        "/api/v1/whisperer/hooks/": {
            "get": {
                "operationId": "listWebhookSubscriptions",
                "summary": "Webhook subscriptions, newest first (brand managers and admins).",
                "responses": {"200": json_response({"type": "array", "items": subscription}, "The subscriptions."),
                              **errors("401", "403", "429")},
            },
            "post": {
                "operationId": "createWebhookSubscription",
                "summary": "Subscribe a URL to an event (brand managers and admins).",
                "description": "The answer carries secret_key, the only time it is shown. Deliveries are signed "
                               "with it (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature).",
                "requestBody": {"required": True, "content": {"application/json": {"schema": create_body,
                                                                                   "example": example}}},
                "responses": {"201": json_response(with_secret, "The subscription, with its secret."),
                              **errors("400", "401", "403", "429")},
            },
        },
        "/api/v1/whisperer/hooks/{hook_id}/": {
            "get": {
                "operationId": "getWebhookSubscription", "summary": "One subscription (never its secret).",
                "parameters": [hook_id],
                "responses": {"200": json_response(subscription, "The subscription."),
                              **errors("401", "403", "404", "429")},
            },
            "patch": {
                "operationId": "updateWebhookSubscription", "summary": "Change some fields of a subscription.",
                "description": "Read-only fields sent back (id, disabled_reason, created_at, updated_at) are ignored; "
                               "secret_key cannot be set (use rotate_secret).",
                "parameters": [hook_id],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "object", "properties": fields, "minProperties": 1},
                    "example": {"is_active": True}}}},
                "responses": {"200": json_response(subscription, "The changed subscription."),
                              **errors("400", "401", "403", "404", "429")},
            },
            "delete": {
                "operationId": "deleteWebhookSubscription",
                "summary": "Delete a subscription with its undelivered events and its delivery log.",
                "parameters": [hook_id],
                "responses": {"204": {"description": "Deleted."}, **errors("401", "403", "404", "429")},
            },
        },
        "/api/v1/whisperer/hooks/{hook_id}/rotate_secret/": {"post": {
            "operationId": "rotateWebhookSecret",
            "summary": "Make a new secret; the old one stops working at once.",
            "parameters": [hook_id],
            "responses": {"200": json_response(with_secret, "The subscription, with its new secret (shown once)."),
                          **errors("401", "403", "404", "429")},
        }},
        "/api/v1/whisperer/hooks/{hook_id}/test/": {"post": {
            "operationId": "sendWebhookTestEvent",
            "summary": "Send a webhook.test event to this subscription (even a switched-off one).",
            "description": "A test gets one attempt and no retries; its outcome appears in the deliveries.",
            "parameters": [hook_id],
            "responses": {"202": json_response(delivery, "The test event's delivery, queued or already done."),
                          **errors("401", "403", "404", "429")},
        }},
        "/api/v1/whisperer/hooks/{hook_id}/deliveries/": {"get": {
            "operationId": "listWebhookDeliveries",
            "summary": "The delivery log: time, attempt, status code, duration and a response excerpt.",
            "parameters": [hook_id, {"name": "limit", "in": "query",
                                     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LOG},
                                     "description": "How many attempts (default 50)."}],
            "responses": {"200": json_response({"type": "array", "items": attempt}, "Attempts, newest first."),
                          **errors("400", "401", "403", "404", "429")},
        }},
        "/api/v1/whisperer/hooks/{hook_id}/redeliver_dead/": {"post": {
            "operationId": "redeliverDeadWebhooks",
            "summary": "Deliver every dead-lettered event of the subscription again, with the same webhook-id.",
            "parameters": [hook_id],
            "responses": {"200": json_response({"type": "object", "required": ["redelivered"],
                                                "properties": {"redelivered": {"type": "integer"}}},
                                               "How many were queued again."),
                          **errors("401", "403", "404", "429")},
        }},
    }


OPENAPI_PATHS.update(_openapi_paths())
