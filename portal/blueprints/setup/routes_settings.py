"""Setup wizard routes for the settings steps: 7 OMNITRON_CLIENT_SETTINGS, 8 ORDER_FILTERING,
9 GEOLOCATION_DISCOVERY (with a key test), and the Omnitron checks of steps 1 and 3.

Each page answers a normal visit with the whole step page and an htmx request with only the
panel it swaps (plus the step's state chip, out of band). Validation lives in the settings service,
so the form and the REST API give the same messages; a bad form changes nothing.
"""
from __future__ import annotations

from flask import current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.blueprints.setup import bp
from portal.blueprints.setup.routes import step_page, step_url
from portal.blueprints.setup.routes_orders import order_import_context
from portal.errors import DomainError, ValidationFailed
from portal.extensions import db
from portal.geolocation import service as geocoding
from portal.geolocation.client import SAMPLE_ADDRESS, GeocodingError
from portal.omnitron import LoginResult, OmnitronClient, OmnitronError, OmnitronUnreachable
from portal.settings import service as settings
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.setup.steps import BY_KEY
from portal.sync.models import Channel
from portal.web import is_fragment_request, plain_int, render_block, with_toast

EXPIRED = "The form expired; please reload the page and try again."


def _respond(template: str, block: str, key: str, *, http_status: int = 200, toast: str = "", **context):
    """The whole step page, or for htmx the named block plus the step's state chip (out of band)."""
    if is_fragment_request():
        status = wizard.status(db.session, key)
        body = render_block(template, block, status=status, form=FlaskForm(), step_url=step_url, **context)
        body += render_template("setup/_settings_state.html", status=status)
        response = make_response(body, http_status)
        response.vary.add("HX-Request")
        if toast:
            with_toast(response, toast, "success" if http_status < 400 else "error")
        return response
    response = make_response(step_page(template, key, **context), http_status)
    response.vary.add("HX-Request")
    return response


def _saved(endpoint: str, template: str, block: str, key: str, message: str, **context):
    """After a successful save: the panel with a toast for htmx, otherwise a redirect with a flash message."""
    if is_fragment_request():
        return _respond(template, block, key, toast=message, **context)
    flash(message, "success")
    return redirect(url_for(endpoint))


def _errors(exc: DomainError, fields: tuple[str, ...]) -> dict[str, str]:
    """A domain error as {field: message}; errors of no form field go under "form"."""
    return {exc.field if exc.field in fields else "form": exc.message}


# Step 7: OMNITRON_CLIENT_SETTINGS

CREDENTIALS = ("setup/omnitron_credentials.html", "credentials_form", "omnitron_credentials")


def _credentials_context(session: Session, values: dict | None = None, errors: dict | None = None) -> dict:
    """What the credentials form shows: the stored username, the password's mask, and any errors."""
    stored = settings.public_value(settings.OMNITRON_CLIENT_SETTINGS,
                                   settings.get_value(session, settings.OMNITRON_CLIENT_SETTINGS))
    auth = stored.get("auth", {}) if isinstance(stored, dict) else {}
    if values is None:
        values = {"username": auth.get("username") or "oms.application"}
    return {"values": values, "errors": errors or {}, "stored_username": auth.get("username"),
            "password_mask": auth.get("password"), "application_step": BY_KEY["application"]}


def _omnitron_login(session: Session) -> tuple[str | None, str | None]:
    """The stored Omnitron username and decrypted password (None where not set or unreadable)."""
    value = settings.get_value(session, settings.OMNITRON_CLIENT_SETTINGS)
    username = value.get("auth", {}).get("username") if isinstance(value, dict) else None
    try:
        password = settings.get_secret(session, settings.OMNITRON_CLIENT_SETTINGS, ("auth", "password"))
    except ValueError:
        password = None
    return username, password


def save_omnitron_credentials(session: Session, username: str, password: str, *, user_id: int | None) -> bool:
    """Save OMNITRON_CLIENT_SETTINGS and mark step 7 done; returns True when the login changed.

    A changed login puts a finished step 3 back to "needs attention", since it checked the old login.
    Raises ValidationFailed (nothing changed) for a missing username, or a missing first password.
    """
    before = _omnitron_login(session)
    settings.set_value(session, settings.OMNITRON_CLIENT_SETTINGS,
                       {"auth": {"username": username, "password": password}}, user_id=user_id)
    changed = _omnitron_login(session) != before
    wizard.mark(session, "omnitron_credentials", SetupStep.DONE, user_id=user_id, commit=False)
    if changed and wizard.status(session, "application").state == SetupStep.DONE:
        wizard.mark(session, "application", SetupStep.NEEDS_ATTENTION, user_id=user_id, commit=False,
                    note="The Omnitron credentials were changed: log in again in this step to check them.")
    session.commit()
    return changed


@bp.route("/omnitron-credentials", methods=["GET", "POST"])
def omnitron_credentials():
    """Step 7: the oms.application user the OMS logs in to Omnitron with (password encrypted, never shown)."""
    if request.method == "GET":
        return _respond(*CREDENTIALS, **_credentials_context(db.session))
    values = {"username": request.form.get("username", "")}
    if not FlaskForm().validate_on_submit():
        return _respond(*CREDENTIALS, http_status=400,
                        **_credentials_context(db.session, values, {"form": EXPIRED}))
    try:
        save_omnitron_credentials(db.session, values["username"], request.form.get("password", ""),
                                  user_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        return _respond(*CREDENTIALS, http_status=422,
                        **_credentials_context(db.session, values, _errors(exc, ("username", "password"))))
    return _saved("setup.omnitron_credentials", *CREDENTIALS, "Omnitron credentials saved.",
                  **_credentials_context(db.session))


# Step 8: ORDER_FILTERING

ORDER_FILTERING = ("setup/order_filtering.html", "order_filtering_form", "order_filtering")
ORDER_FIELDS = ("statuses", "channels", "start_date", "exclude_test_orders", "page_size")


def _order_filtering_from_form(form) -> dict:
    """The ORDER_FILTERING value a posted form describes; raises ValidationFailed for non-numbers."""
    try:
        channels = [int(c) for c in form.getlist("channels")]
    except ValueError:
        raise ValidationFailed("Choose channels from the list.", field="channels") from None
    page_size = (form.get("page_size") or "").strip()
    if plain_int(page_size) is None:
        raise ValidationFailed("page_size must be a number from 1 to 1000.", field="page_size")
    return {"statuses": form.getlist("statuses"), "channels": channels,
            "start_date": (form.get("start_date") or "").strip() or None,
            "exclude_test_orders": form.get("exclude_test_orders") in ("on", "true", "1"),
            "page_size": int(page_size)}


def _order_filtering_context(session: Session, values: dict | None = None, errors: dict | None = None) -> dict:
    """What the ORDER_FILTERING form shows: choices, the values to fill in, errors, and the stored JSON."""
    stored = settings.get_value(session, settings.ORDER_FILTERING)
    if values is None:
        base = stored if isinstance(stored, dict) else {}
        values = {"statuses": base.get("statuses", []), "channels": base.get("channels", []),
                  "start_date": base.get("start_date") or "",
                  "exclude_test_orders": base.get("exclude_test_orders", True),
                  "page_size": base.get("page_size", 100)}
    channels = list(session.scalars(select(Channel).order_by(Channel.name, Channel.omnitron_id)))
    return {"values": values, "errors": errors or {}, "stored": stored, "channels": channels,
            "order_statuses": settings.ORDER_STATUSES, "channels_step": BY_KEY["channels"],
            **order_import_context(session)}


@bp.route("/order-filtering", methods=["GET", "POST"])
def order_filtering():
    """Step 8: which orders the OMS fetches from Omnitron (statuses, channels, start date, ...)."""
    if request.method == "GET":
        return _respond(*ORDER_FILTERING, **_order_filtering_context(db.session))
    form = request.form
    values = {"statuses": form.getlist("statuses"), "channels": form.getlist("channels"),
              "start_date": form.get("start_date", ""), "exclude_test_orders": form.get("exclude_test_orders") == "on",
              "page_size": form.get("page_size", "")}
    if not FlaskForm().validate_on_submit():
        return _respond(*ORDER_FILTERING, http_status=400,
                        **_order_filtering_context(db.session, values, {"form": EXPIRED}))
    try:
        settings.set_value(db.session, settings.ORDER_FILTERING, _order_filtering_from_form(form),
                           user_id=current_user.id)
        wizard.mark(db.session, "order_filtering", SetupStep.DONE, user_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        return _respond(*ORDER_FILTERING, http_status=422,
                        **_order_filtering_context(db.session, values, _errors(exc, ORDER_FIELDS)))
    return _saved("setup.order_filtering", *ORDER_FILTERING, "Order filtering saved.",
                  **_order_filtering_context(db.session))


# Step 9: GEOLOCATION_DISCOVERY

GEOLOCATION = ("setup/geolocation.html", "geolocation_panel", "geolocation")


def _geolocation_context(session: Session, values: dict | None = None, errors: dict | None = None,
                         result=None, test_error: str = "", address: str = "") -> dict:
    """What the geolocation page shows: provider and key mask, errors, and the last test's result."""
    stored = settings.public_value(settings.GEOLOCATION_DISCOVERY,
                                   settings.get_value(session, settings.GEOLOCATION_DISCOVERY))
    stored = stored if isinstance(stored, dict) else {}
    if values is None:
        values = {"provider": stored.get("provider") or ""}
    return {"values": values, "errors": errors or {}, "key_mask": stored.get("api_key"),
            "stored_provider": stored.get("provider"), "providers": settings.GEOLOCATION_PROVIDERS,
            "result": result, "test_error": test_error, "address": address or SAMPLE_ADDRESS,
            "sample_address": SAMPLE_ADDRESS}


@bp.route("/geolocation", methods=["GET", "POST"])
def geolocation():
    """Step 9: the geocoding provider and its API key (encrypted, shown masked)."""
    if request.method == "GET":
        return _respond(*GEOLOCATION, **_geolocation_context(db.session))
    values = {"provider": request.form.get("provider", "")}
    if not FlaskForm().validate_on_submit():
        return _respond(*GEOLOCATION, http_status=400, **_geolocation_context(db.session, values, {"form": EXPIRED}))
    try:
        changed = geocoding.save_settings(db.session, values["provider"], request.form.get("api_key", ""),
                                            user_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        return _respond(*GEOLOCATION, http_status=422,
                        **_geolocation_context(db.session, values, _errors(exc, ("provider", "api_key"))))
    message = "Geolocation settings saved. Test the key to finish this step." if changed else \
        "Geolocation settings saved (unchanged)."
    return _saved("setup.geolocation", *GEOLOCATION, message, **_geolocation_context(db.session))


@bp.post("/geolocation/test")
def geolocation_test():
    """Geocode a sample address with the saved key; shows the coordinates or why it failed."""
    address = (request.form.get("address") or "").strip()
    if not FlaskForm().validate_on_submit():
        return _respond(GEOLOCATION[0], "geolocation_test", GEOLOCATION[2], http_status=400,
                        **_geolocation_context(db.session, test_error=EXPIRED, address=address))
    try:
        found = geocoding.check_saved_key(db.session, current_app.config, user_id=current_user.id,
                                            address=address)
    except GeocodingError as exc:
        return _respond(GEOLOCATION[0], "geolocation_test", GEOLOCATION[2],
                        **_geolocation_context(db.session, test_error=exc.message, address=address))
    except DomainError as exc:
        db.session.rollback()
        return _respond(GEOLOCATION[0], "geolocation_test", GEOLOCATION[2], http_status=422,
                        **_geolocation_context(db.session, test_error=exc.message, address=address))
    return _respond(GEOLOCATION[0], "geolocation_test", GEOLOCATION[2],
                    **_geolocation_context(db.session, result=found, address=address))


# Steps 1 and 3: can Omnitron be reached, and does it accept the stored credentials?

MACHINE = ("setup/machine.html", "machine_check", "machine")
APPLICATION = ("setup/application.html", "application_check", "application")
UNREACHABLE_HINT = ("If it stays unreachable, open a job on the INF board with the brand's details and ask for "
                    "the OMS machine to be opened.")


def _check_client(config, username: str = "", password: str = "") -> OmnitronClient:
    """A client for a one-off check: no retries, since a check should show the truth now."""
    client = OmnitronClient.from_config(config, username, password)
    client.retries = 0
    return client


def check_machine(session: Session, config, *, user_id: int | None) -> float:
    """Ping Omnitron's health endpoint; marks step 1 done (with the latency) or needing attention.

    Returns the latency in milliseconds; raises OmnitronError when Omnitron cannot be reached or answers badly.
    """
    url = config.get("OMNITRON_URL", "")
    try:
        with _check_client(config) as client:
            latency = client.ping()
    except OmnitronError as exc:
        hint = f" {UNREACHABLE_HINT}" if isinstance(exc, OmnitronUnreachable) else ""
        wizard.mark(session, "machine", SetupStep.NEEDS_ATTENTION, user_id=user_id, note=exc.message + hint)
        raise
    wizard.mark(session, "machine", SetupStep.DONE, user_id=user_id,
                note=f"Omnitron at {url} answered in {latency:g} ms.")
    return latency


def check_application(session: Session, config, *, user_id: int | None) -> LoginResult:
    """Log in to Omnitron with the stored OMNITRON_CLIENT_SETTINGS; marks step 3 done or needing attention.

    Raises ValidationFailed when no credentials are saved (nothing is marked), OmnitronError when the login fails.
    """
    username, password = _omnitron_login(session)
    if not username or not password:
        raise ValidationFailed("Save the Omnitron username and password in step 7 first.", field="credentials")
    try:
        with _check_client(config, username, password) as client:
            result = client.check_login()
    except OmnitronError as exc:
        hint = f" {UNREACHABLE_HINT}" if isinstance(exc, OmnitronUnreachable) else ""
        wizard.mark(session, "application", SetupStep.NEEDS_ATTENTION, user_id=user_id, note=exc.message + hint)
        raise
    wizard.mark(session, "application", SetupStep.DONE, user_id=user_id,
                note=f"Logged in to {config.get('OMNITRON_URL', '')} as {result.username} in {result.latency_ms:g} ms.")
    return result


def _omnitron_context(session: Session, **extra) -> dict:
    """What steps 1 and 3 show: Omnitron's URL, the stored user, and the check's result or error."""
    username, _ = _omnitron_login(session)
    stored = settings.public_value(settings.OMNITRON_CLIENT_SETTINGS,
                                   settings.get_value(session, settings.OMNITRON_CLIENT_SETTINGS))
    mask = stored.get("auth", {}).get("password") if isinstance(stored, dict) else None
    context = {"omnitron_url": current_app.config.get("OMNITRON_URL", ""), "username": username,
               "password_mask": mask, "credentials_step": BY_KEY["omnitron_credentials"],
               "latency": None, "login": None, "error": "", "error_kind": ""}
    context.update(extra)
    return context


@bp.get("/machine")
def machine():
    """Step 1: check that Omnitron can be reached, and how fast."""
    return _respond(*MACHINE, **_omnitron_context(db.session))


@bp.post("/machine/check")
def machine_check():
    """Ping Omnitron now; shows the latency in milliseconds, or the error."""
    if not FlaskForm().validate_on_submit():
        return _respond(*MACHINE, http_status=400, **_omnitron_context(db.session, error=EXPIRED))
    try:
        latency = check_machine(db.session, current_app.config, user_id=current_user.id)
    except OmnitronError as exc:
        return _respond(*MACHINE, **_omnitron_context(db.session, error=exc.message, error_kind=exc.code))
    return _respond(*MACHINE, **_omnitron_context(db.session, latency=latency))


@bp.get("/application")
def application():
    """Step 3: log in to Omnitron with the stored credentials and show the result."""
    return _respond(*APPLICATION, **_omnitron_context(db.session))


@bp.post("/application/check")
def application_check():
    """Log in to Omnitron now with OMNITRON_CLIENT_SETTINGS; shows who logged in, or why it failed."""
    if not FlaskForm().validate_on_submit():
        return _respond(*APPLICATION, http_status=400, **_omnitron_context(db.session, error=EXPIRED))
    try:
        login = check_application(db.session, current_app.config, user_id=current_user.id)
    except OmnitronError as exc:
        return _respond(*APPLICATION, **_omnitron_context(db.session, error=exc.message, error_kind=exc.code))
    except DomainError as exc:
        db.session.rollback()
        return _respond(*APPLICATION, http_status=422,
                        **_omnitron_context(db.session, error=exc.message, error_kind=exc.code))
    return _respond(*APPLICATION, **_omnitron_context(db.session, login=login))
