"""Routes: subscriptions (list, form, secret shown once, rotate, on/off, delete), test events, the delivery log.

Every route parses the request, calls one function of portal.webhooks.service and renders. Pages answer a
normal visit with the whole page and an htmx request with the #webhook-page block; actions on a
subscription's page swap only the panel they change and say what happened in a toast.
"""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from portal.blueprints.webhooks import bp
from portal.blueprints.webhooks.forms import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_TYPE,
    RETRY_PARAMS,
    RETRY_TYPES,
    SubscriptionForm,
    describe_retry,
)
from portal.errors import NotFound, ValidationFailed
from portal.extensions import db
from portal.outbox.models import OutboxMessage
from portal.web import answer, hx_redirect, is_fragment_request
from portal.webhooks import catalogue, console, inspector
from portal.webhooks import service as webhooks

PAGE_BLOCK = "webhook_page"
POLL_SECONDS = 2


@bp.record_once
def webhook_words(state) -> None:
    """Template globals for events and attempts (globals, so imported macros see them; setup step 12 too)."""
    state.app.jinja_env.globals.update(
        event_plain_name=catalogue.plain_name, event_vendor_label=catalogue.vendor_label,
        is_trial_message=webhooks.is_trial, failure_summary=console.failure_summary)


def _event_choices() -> list[tuple[str, str]]:
    """The event select: every event, then each event of the catalogue."""
    return [(catalogue.WILDCARD, _("All events (*)"))] + [
        (t, f"{catalogue.plain_name(t)} · {catalogue.vendor_label(t)}") for t in catalogue.EVENT_TYPES]


def _error_slot(field: str | None, retry_type: str | None) -> str:
    """Where a service error is shown: beside the form field it concerns, else at the top of the form.

    The service names retry parameters by their own names ("interval", "max_attempts", "type").
    """
    field = field or ""
    if field in ("event_type", "target_url", "is_active", "max_attempts", "headers"):
        return field
    if field in ("type", "retry_type", "retry_countdown_config"):
        return "retry_type"
    if field.startswith("retry_"):
        return field
    if field in {name for name, *_ in RETRY_PARAMS.get(retry_type or "", [])}:
        return f"retry_{field}"
    if field == "additional_headers":
        return "headers"
    return "form"


def _no_store(response):
    """Keep a response that shows a secret out of every cache."""
    response.headers["Cache-Control"] = "no-store"
    response.vary.add("HX-Request")
    return response


def _after_action(message: str, endpoint: str, **values):
    """After a change that leaves the page: a full page load there with the message (htmx or not)."""
    flash(message, "success")
    return hx_redirect(url_for(endpoint, **values))


# The list


def _last_delivery(subscription_id: int):
    """The subscription's latest delivery attempt, or None."""
    log = webhooks.delivery_log(db.session, subscription_id, limit=1)
    return log[0] if log else None


@bp.get("/")
def index():
    """Every subscription with its state and last delivery; admins also see the outbox by kind."""
    subscriptions = webhooks.list_subscriptions(db.session)
    return answer(
        "webhooks/index.html", PAGE_BLOCK, subscriptions=subscriptions,
        last_delivery={s.id: _last_delivery(s.id) for s in subscriptions},
        outbox_summary=webhooks.outbox_summary(db.session) if current_user.is_admin else None,
        wildcard=catalogue.WILDCARD, inspector_on=inspector.enabled(current_app.config))


# The form


def _form_context(form: SubscriptionForm, subscription=None, errors: dict | None = None,
                  posted: bool = False) -> dict:
    """What the subscription form shows: its fields, the chosen countdown's parameters, header rows, errors."""
    if posted:
        retry_type = form.retry_type.data if form.retry_type.data in RETRY_PARAMS else DEFAULT_RETRY_TYPE
        retry_values = form.retry_values(request.form)
        header_rows = form.header_rows(request.form)
    elif subscription is not None:
        config = dict(subscription.retry_countdown_config or {})
        stored_type = config.get("type")
        retry_type = stored_type if isinstance(stored_type, str) and stored_type in RETRY_PARAMS else DEFAULT_RETRY_TYPE
        retry_values = {k: str(v) for k, v in config.items() if k not in ("type", "max_attempts")}
        header_rows = list((subscription.additional_headers or {}).items())
    else:
        retry_type, retry_values, header_rows = DEFAULT_RETRY_TYPE, {}, []
    for name, _label, _help, default in RETRY_PARAMS[retry_type]:
        retry_values.setdefault(name, default)
        if not posted and not retry_values[name]:
            retry_values[name] = default
    inspector_url = inspector.url(current_app.config)
    if posted:
        target_choice = "inspector" if request.form.get("target_choice") == "inspector" and inspector_url else "url"
    elif subscription is not None:
        target_choice = "inspector" if inspector_url and subscription.target_url == inspector_url else "url"
    else:
        target_choice = "inspector" if request.args.get("target") == "inspector" and inspector_url else "url"
    # One empty row to type a new header into.
    return {"form": form, "subscription": subscription, "errors": errors or {}, "retry_type": retry_type,
            "inspector_url": inspector_url, "target_choice": target_choice, "duplicate_of": None,
            "retry_types": RETRY_TYPES, "event_choices": _event_choices(),
            "retry_params": RETRY_PARAMS[retry_type], "retry_values": retry_values,
            "header_rows": header_rows + [("", "")], "event_types": catalogue.EVENT_TYPES,
            "wildcard": catalogue.WILDCARD}


def _form_page(form: SubscriptionForm, subscription=None, errors: dict | None = None, status: int = 200,
               posted: bool = False):
    """The subscription form page, or its #webhook-page block for htmx."""
    return answer("webhooks/form.html", PAGE_BLOCK, code=status,
                  **_form_context(form, subscription, errors, posted))


def _form_errors(form: SubscriptionForm, subscription=None, errors: dict | None = None,
                 duplicate_of: int | None = None):
    """The posted form again with the errors beside their fields (422, which htmx swaps); nothing was saved.

    duplicate_of: the subscription that already sends this event to this URL (offered to open instead).
    """
    context = {**_form_context(form, subscription, errors, posted=True), "duplicate_of": duplicate_of}
    if is_fragment_request():
        return answer("webhooks/form.html", "subscription_form", code=422, **context)
    return answer("webhooks/form.html", PAGE_BLOCK, code=422, **context)


@bp.get("/new")
def new():
    """An empty subscription form; ?event_type= preselects an event (the setup wizard's "Subscribe" links)."""
    wanted = request.args.get("event_type", "")
    event_type = wanted if wanted in catalogue.EVENT_TYPES or wanted == catalogue.WILDCARD else catalogue.WILDCARD
    form = SubscriptionForm(formdata=None, event_type=event_type)
    return _form_page(form)


@bp.get("/retry-fields")
def retry_fields():
    """The parameter fields of the chosen retry countdown type (swapped when the type changes)."""
    form = SubscriptionForm(formdata=request.args)
    retry_type = form.retry_type.data if form.retry_type.data in RETRY_PARAMS else DEFAULT_RETRY_TYPE
    values = form.retry_values(request.args)
    for name, _label, _help, default in RETRY_PARAMS[retry_type]:
        values[name] = values.get(name) or default
    return answer("webhooks/_retry_fields.html", retry_type=retry_type, retry_params=RETRY_PARAMS[retry_type],
                  retry_values=values, errors={})


@bp.get("/header-row")
def header_row():
    """One more empty header row for the form."""
    return render_template("webhooks/_header_row.html", name="", value="")


def _save(form: SubscriptionForm, subscription=None):
    """Parse the form and create or update through the service; returns (subscription, secret or None).

    "Use the built-in inspector" (target_choice=inspector, while the inspector is on) targets its URL.
    """
    fields = form.subscription_fields(request.form)
    inspector_url = inspector.url(current_app.config)
    if request.form.get("target_choice") == "inspector" and inspector_url:
        fields["target_url"] = inspector_url
    if subscription is None:
        return webhooks.create_subscription(db.session, **fields, user_id=current_user.id,
                                            allow_duplicate=request.form.get("allow_duplicate") == "1")
    return webhooks.update_subscription(db.session, subscription.id, user_id=current_user.id, **fields), None


@bp.post("/")
def create():
    """Create a subscription and show its secret, once; the same event to the same URL again needs a yes."""
    form = SubscriptionForm()
    try:
        subscription, secret = _save(form)
    except webhooks.DuplicateSubscription as exc:
        db.session.rollback()
        return _form_errors(form, errors={"duplicate": exc.message}, duplicate_of=exc.existing)
    except ValidationFailed as exc:
        db.session.rollback()
        return _form_errors(form, errors={_error_slot(exc.field, form.retry_type.data): exc.message})
    return _secret_response(subscription, secret, created=True)


@bp.get("/<int:subscription_id>/edit")
def edit(subscription_id: int):
    """The form filled with a subscription's settings (the secret is never part of it)."""
    subscription = webhooks.get_subscription(db.session, subscription_id)
    config = subscription.retry_countdown_config or {}
    form = SubscriptionForm(formdata=None, event_type=subscription.event_type, target_url=subscription.target_url,
                            is_active=subscription.is_active, retry_type=config.get("type", DEFAULT_RETRY_TYPE),
                            max_attempts=str(config.get("max_attempts", DEFAULT_MAX_ATTEMPTS)))
    return _form_page(form, subscription)


@bp.post("/<int:subscription_id>")
def update(subscription_id: int):
    """Save changes to a subscription; its secret stays as it is."""
    subscription = webhooks.get_subscription(db.session, subscription_id)
    form = SubscriptionForm()
    try:
        _save(form, subscription)
    except ValidationFailed as exc:
        db.session.rollback()
        return _form_errors(form, subscription, {_error_slot(exc.field, form.retry_type.data): exc.message})
    return _after_action(_("Subscription saved."), "webhooks.show", subscription_id=subscription_id)


# One subscription: its page, the secret, on/off, delete


def _log_context(subscription) -> dict:
    """The delivery log: attempts newest first, each with its message, and what is still on its way."""
    attempts = webhooks.delivery_log(db.session, subscription.id)
    ids = {a.message_id for a in attempts}
    messages = {m.id: m for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids)))} \
        if ids else {}
    # Attempts come newest first: each message's "Redeliver" sits on its latest attempt only.
    latest: dict[int, int] = {}
    for attempt in attempts:
        latest.setdefault(attempt.message_id, attempt.id)
    return {"subscription": subscription, "attempts": attempts, "messages": messages,
            "latest_attempt_ids": set(latest.values()),
            "in_flight": len(webhooks.pending_messages(db.session, subscription.id)),
            "dead": webhooks.dead_messages(db.session, subscription.id),
            "poll_seconds": POLL_SECONDS, "redeliverable": (OutboxMessage.SENT, OutboxMessage.DEAD,
                                                            OutboxMessage.FAILED, OutboxMessage.DISCARDED)}


def _show_context(subscription) -> dict:
    """Everything the subscription page shows: settings, the delivery log, samples, and what the inspector got."""
    to_inspector = inspector.is_inspector_url(subscription.target_url, current_app.config)
    sample_types = [t for t in catalogue.EVENT_TYPES
                    if subscription.event_type in (catalogue.WILDCARD, t) and t != catalogue.WEBHOOK_TEST]
    return {"event_types": catalogue.EVENT_TYPES, "wildcard": catalogue.WILDCARD, "describe_retry": describe_retry,
            "form": FlaskForm(), "to_inspector": to_inspector, "sample_types": sample_types,
            "where": _("the built-in inspector") if to_inspector else subscription.target_url,
            "explain": console.explain, "show_subscription": False,
            "received": inspector.received(db.session, subscription.id, limit=20) if to_inspector else [],
            **_log_context(subscription)}


def _block(block: str, subscription, status: int = 200, toast: str = "", level: str = "success"):
    """One block of the subscription page (for htmx), with an optional toast."""
    return answer("webhooks/show.html", block, code=status, fragment=True, toast=toast or None, level=level,
                  **_show_context(subscription))


def _done(subscription_id: int, block: str, message: str, level: str = "success"):
    """After an action on the subscription's page: the changed block and a toast, or redirect with a flash."""
    if is_fragment_request():
        subscription = webhooks.get_subscription(db.session, subscription_id)
        return _block(block, subscription, 422 if level == "error" else 200, message, level)
    flash(message, level)
    return redirect(url_for("webhooks.show", subscription_id=subscription_id))


@bp.get("/<int:subscription_id>")
def show(subscription_id: int):
    """A subscription: its settings, state, actions and delivery log."""
    subscription = webhooks.get_subscription(db.session, subscription_id)
    return answer("webhooks/show.html", PAGE_BLOCK, **_show_context(subscription))


@bp.get("/<int:subscription_id>/deliveries")
def deliveries(subscription_id: int):
    """The delivery log alone: htmx polls it while anything is on its way."""
    subscription = webhooks.get_subscription(db.session, subscription_id)
    return answer("webhooks/show.html", "delivery_log", **_show_context(subscription))


def _secret_response(subscription, secret: str, *, created: bool):
    """The new secret, shown this once: a panel for htmx, a page otherwise; never cached."""
    context = {"subscription": subscription, "secret": secret, "created": created, "wildcard": catalogue.WILDCARD,
               "to_inspector": inspector.is_inspector_url(subscription.target_url, current_app.config)}
    message = _("Subscription created. Copy its secret now.") if created else _("New secret made. Copy it now.")
    if is_fragment_request() and created:
        # The whole page becomes the secret page; reloading it shows the subscription, never the secret.
        return _no_store(answer("webhooks/secret.html", PAGE_BLOCK, code=201, toast=message, headers={
            "HX-Retarget": "#webhook-page", "HX-Reswap": "outerHTML",
            "HX-Push-Url": url_for("webhooks.show", subscription_id=subscription.id)}, **context))
    if is_fragment_request():
        return _no_store(answer("webhooks/_secret.html", toast=message, **context))
    return _no_store(answer("webhooks/secret.html", code=201 if created else 200, fragment=False, **context))


@bp.post("/<int:subscription_id>/rotate-secret")
def rotate_secret(subscription_id: int):
    """Replace the secret; the new one is shown once and the old one stops working at once."""
    secret = webhooks.rotate_secret(db.session, subscription_id, user_id=current_user.id)
    return _secret_response(webhooks.get_subscription(db.session, subscription_id), secret, created=False)


@bp.post("/<int:subscription_id>/active")
def set_active(subscription_id: int):
    """Turn delivery on (which clears the reason it was disabled) or off."""
    active = request.form.get("active") == "true"
    subscription = webhooks.set_active(db.session, subscription_id, active, user_id=current_user.id)
    message = _("Subscription activated: events will be delivered again.") if subscription.is_active \
        else _("Subscription deactivated: no events are delivered until it is activated.")
    return _done(subscription_id, "subscription_panel", message)


@bp.post("/<int:subscription_id>/delete")
def delete(subscription_id: int):
    """Delete a subscription and its delivery log."""
    subscription = webhooks.get_subscription(db.session, subscription_id)
    label = f"{subscription.event_type} → {subscription.target_url}"
    webhooks.delete_subscription(db.session, subscription_id, user_id=current_user.id)
    return _after_action(_("Subscription deleted (%(subscription)s).", subscription=label), "webhooks.index")


# Test events and redelivery


def _log_action(subscription_id: int, action) -> tuple[str, str]:
    """Run an action of the delivery log; a refusal becomes an error message instead of a page."""
    try:
        return action(), "success"
    except ValidationFailed as exc:
        db.session.rollback()
        return exc.message, "error"


@bp.post("/<int:subscription_id>/test")
def send_test(subscription_id: int):
    """Queue a test event for this subscription; the log shows its delivery."""

    message = webhooks.send_test_event(db.session, subscription_id, user_id=current_user.id)
    text, level = _trial_outcome(message, _("Test event"))
    return _done(subscription_id, "delivery_log", text, level)


def _trial_outcome(message: OutboxMessage, what: str) -> tuple[str, str]:
    """What a test event or sample came to, for a toast: delivered, failed (never retried), or on its way."""
    if message.status == OutboxMessage.SENT:
        return _("%(what)s delivered. The log below shows the receiver's answer.", what=what), "success"
    if message.status == OutboxMessage.DEAD:
        return _("Test failed: nothing will be retried. The log below says why."), "error"
    return _("%(what)s queued. Its delivery appears in the log below.", what=what), "success"


@bp.post("/<int:subscription_id>/deliveries/<int:message_id>/redeliver")
def redeliver(subscription_id: int, message_id: int):
    """Deliver one event again, with the same id so the receiver can tell it is a repeat."""

    queued = db.session.get(OutboxMessage, message_id)
    if queued is None or queued.subscription_id != subscription_id:
        raise NotFound(_("That delivery is not in this subscription's log."))

    def again() -> str:
        """Put it back in the queue and say so."""
        message = webhooks.redeliver(db.session, message_id, user_id=current_user.id)
        return _("Event %(event)s queued for delivery again.", event=message.event_type or message.uuid)
    message, level = _log_action(subscription_id, again)
    return _done(subscription_id, "delivery_log", message, level)


@bp.post("/<int:subscription_id>/redeliver-dead")
def redeliver_dead(subscription_id: int):
    """Deliver again every event that was given up on (dead-lettered) for this subscription."""

    def again() -> str:
        """Put them back in the queue and say how many."""
        count = webhooks.redeliver_dead(db.session, subscription_id, user_id=current_user.id)
        if not count:
            return _("Nothing was dead-lettered.")
        return ngettext("%(num)d dead-lettered event queued for delivery again.",
                        "%(num)d dead-lettered events queued for delivery again.", count)
    message, level = _log_action(subscription_id, again)
    return _done(subscription_id, "delivery_log", message, level)
