"""Routes: application settings (IS_OTP_ENABLED) and the outbox of messages."""
from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from portal.accounts.models import Role
from portal.blueprints.settings import bp
from portal.errors import DomainError
from portal.extensions import db
from portal.i18n import N_
from portal.outbox.models import OutboxMessage
from portal.settings import service as settings
from portal.settings import summary
from portal.web import answer, is_htmx, role_required
from portal.webhooks import catalogue


def _summaries(rows) -> dict[str, list[tuple[str, str]]]:
    """Each stored setting's value in words, by key (wanted events by their plain names)."""
    formatters = {settings.WANTED_EVENTS: lambda t: catalogue.plain_name(str(t)),
                  settings.PICKUP_CODE_DELIVERY: lambda m: str(settings.PICKUP_CODE_DELIVERY_MODES.get(str(m), m))}
    return {row.key: summary.summarize(row.key, row.json_value, formatters) for row in rows}


def _panel_context(otp_enabled: bool) -> dict:
    """What the settings panel shows: the pickup code switch, and every stored setting in words."""
    rows = settings.list_settings(db.session)
    return {"otp_enabled": otp_enabled, "rows": rows, "public_value": settings.public_value,
            "summaries": _summaries(rows), "setting_name": summary.setting_name}


@bp.get("/settings")
@role_required(Role.ADMIN.value)
def index():
    """The application settings page."""
    return answer("settings/index.html", "settings_panel", form=FlaskForm(),
                  **_panel_context(settings.is_otp_enabled(db.session)))


@bp.post("/settings/otp")
@role_required(Role.ADMIN.value)
def toggle_otp():
    """Switch pickup codes on or off."""
    form = FlaskForm()  # CSRFProtect has checked its token already; portal.web answers an expired one
    enabled = request.form.get("enabled") == "true"
    try:
        settings.set_value(db.session, settings.IS_OTP_ENABLED, enabled, user_id=current_user.id)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("settings.index"))
    message = _("Pickup codes are on.") if enabled else \
        _("Pickup codes are off: packages are handed over without a code.")
    if is_htmx():
        return answer("settings/index.html", "settings_panel", toast=message, form=form,
                      **_panel_context(enabled))
    flash(message, "success")
    return redirect(url_for("settings.index"))


# Status -> label, marked with N_ and translated where it is shown.
OUTBOX_FILTERS = {OutboxMessage.PENDING: N_("Pending"), OutboxMessage.SENDING: N_("Sending"),
                  OutboxMessage.FAILED: N_("Failed"), OutboxMessage.DEAD: N_("Dead-lettered"),
                  OutboxMessage.SENT: N_("Sent")}


@bp.get("/outbox")
@role_required(Role.ADMIN.value)
def outbox():
    """The newest outbox messages, optionally only those with one status."""
    chosen = request.args.get("status") or ""
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(100)
    if chosen in OUTBOX_FILTERS:
        stmt = stmt.where(OutboxMessage.status == chosen)
    return answer("settings/outbox.html", "outbox_table", messages=list(db.session.scalars(stmt)),
                  chosen=chosen, filters=OUTBOX_FILTERS)
