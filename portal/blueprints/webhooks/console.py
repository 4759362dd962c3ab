"""The webhook console: the built-in inspector, sample payloads and "Send a sample", the signature self-test.

The inspector's receiving endpoint takes deliveries from the portal's own worker: no login, no CSRF token,
and a 404 unless the inspector is on (never in production). Everything else is for brand managers and
admins, like the rest of the webhooks blueprint.
"""
from __future__ import annotations

import json

from flask import abort, current_app, jsonify, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.blueprints.webhooks import bp
from portal.blueprints.webhooks.routes import POLL_SECONDS, _done, _trial_outcome
from portal.errors import ValidationFailed
from portal.extensions import csrf, db
from portal.packages import event_samples
from portal.web import answer
from portal.webhooks import catalogue, console, inspector, signing
from portal.webhooks import service as webhooks


def _inspector_on() -> None:
    """404 unless the built-in inspector is on (development and the demo)."""
    if not inspector.enabled(current_app.config):
        abort(404)


@bp.route("/inspector/receive", methods=["POST", "PUT", "PATCH"])
@csrf.exempt
def inspector_receive():
    """Keep a delivery as received, with its signature verdict, and answer 200 (the inspector's endpoint)."""
    _inspector_on()
    kept = inspector.receive(db.session, request.method, list(request.headers.items()), request.get_data())
    return jsonify({"received": True, "id": kept.id, "signature": kept.verdict})


def _inspector_context(subscription_id: int | None) -> dict:
    """The inspector's requests (all, or one subscription's), newest first, with the words for each verdict."""
    return {"received": inspector.received(db.session, subscription_id, limit=20 if subscription_id else 50),
            "explain": console.explain, "inspector_url": inspector.url(current_app.config),
            "poll_seconds": POLL_SECONDS, "keep": inspector.KEEP, "show_subscription": subscription_id is None,
            "received_url": (url_for("webhooks.inspector_requests", subscription=subscription_id) if subscription_id
                             else url_for("webhooks.inspector_requests"))}


@bp.get("/inspector")
def inspector_page():
    """Every request the built-in inspector received, newest first; the list refreshes itself."""
    _inspector_on()
    return answer("webhooks/inspector.html", "webhook_page", **_inspector_context(None))


@bp.get("/inspector/requests")
def inspector_requests():
    """The received requests alone (htmx polls it); ?subscription=<id> narrows it to one subscription."""
    _inspector_on()
    raw = request.args.get("subscription", "")
    subscription_id = int(raw) if raw.isdigit() and len(raw) < 10 else None
    return answer("webhooks/inspector.html", "webhooks/_received.html", fragment=True,
                  **_inspector_context(subscription_id))


@bp.get("/samples")
def samples():
    """A sample payload of every event type, as a receiver gets it, built from a made-up package."""
    return answer("webhooks/samples.html", "webhook_page",
                  samples=[(t, json.dumps(event_samples.sample_envelope(t), indent=2, ensure_ascii=False))
                           for t in catalogue.EVENT_TYPES],
                  event_descriptions=catalogue.EVENT_TYPES)


@bp.post("/<int:subscription_id>/samples/<event_type>")
def send_sample(subscription_id: int, event_type: str):
    """Send one sample event of a type this subscription receives; the log shows its delivery."""
    subscription = webhooks.get_subscription(db.session, subscription_id)
    try:
        payload = event_samples.sample_payload(event_type)
        message = webhooks.send_sample(db.session, subscription.id, event_type, payload, user_id=current_user.id)
    except (KeyError, ValidationFailed):
        db.session.rollback()
        return _done(subscription_id, "delivery_log", _("This subscription does not receive that event."), "error")
    text, level = _trial_outcome(message, _("Sample “%(event)s”", event=catalogue.plain_name(event_type)))
    return _done(subscription_id, "delivery_log", text, level)


@bp.route("/signature-check", methods=["GET", "POST"])
def signature_check():
    """Paste a body, its headers and a secret: valid, or why not (wrong secret, stale timestamp, malformed header)."""
    values = {"body": "", "headers": "", "secret": ""}
    verdict = None
    if request.method == "POST":
        values = {name: request.form.get(name, "") for name in values}
        code, detail = signing.check(values["secret"], console.parse_pasted_headers(values["headers"]),
                                     values["body"].encode())
        verdict = console.explain(code, detail)
    elif request.args.get("request", "").isdigit() and inspector.enabled(current_app.config):
        # Opened from a request the inspector received: its body and webhook headers, ready to check.
        row = inspector.get(db.session, request.args["request"])
        if row is not None:
            values["body"] = row.body
            values["headers"] = "\n".join(f"{n}: {v}" for n, v in row.headers if n.lower().startswith("webhook-"))
    block = "check_result" if request.method == "POST" else "webhook_page"
    return answer("webhooks/signature_check.html", block, values=values, verdict=verdict)
