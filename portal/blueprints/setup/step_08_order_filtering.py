"""Setup step 8, Order filtering: ORDER_FILTERING, and "Fetch orders now".

"Fetch orders now" runs the order import on the job queue and shows its summary. The panel lives on
the order filtering page. While a run is queued or running it asks for itself every second (the server
leaves the polling trigger out once the run has ended); then it shows what the run fetched, created,
found already imported, skipped (with the reasons) and failed.
"""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.blueprints.setup import bp
from portal.blueprints.setup.shared_settings import (
    _errors,
    _respond,
    _saved,
)
from portal.errors import DomainError, ValidationFailed
from portal.extensions import db
from portal.orders import service as orders
from portal.runs.service import panel_state
from portal.settings import service as settings
from portal.settings import summary
from portal.setup.steps import BY_KEY
from portal.sync.models import Channel
from portal.web import answer, is_fragment_request, plain_int

ORDER_FILTERING = ("setup/order_filtering.html", "order_filtering_form", "order_filtering")


ORDER_FIELDS = ("statuses", "channels", "start_date", "exclude_test_orders", "page_size")


def _order_filtering_from_form(form) -> dict:
    """The ORDER_FILTERING value a posted form describes; raises ValidationFailed for non-numbers."""
    try:
        channels = [int(c) for c in form.getlist("channels")]
    except ValueError:
        raise ValidationFailed(_("Choose channels from the list."), field="channels") from None
    page_size = (form.get("page_size") or "").strip()
    if plain_int(page_size) is None:
        raise ValidationFailed(_("page_size must be a number from 1 to 1000."), field="page_size")
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
    names = {str(c.omnitron_id): c.name for c in channels}
    pairs = summary.summarize(settings.ORDER_FILTERING, stored,
                              {"channels": lambda cid: names.get(str(cid), f"#{cid}")}) if stored is not None else []
    return {"values": values, "errors": errors or {}, "stored": stored, "stored_summary": pairs, "channels": channels,
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
    try:
        settings.set_value(db.session, settings.ORDER_FILTERING, _order_filtering_from_form(form),
                           user_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        return _respond(*ORDER_FILTERING, http_status=422,
                        **_order_filtering_context(db.session, values, _errors(exc, ORDER_FIELDS)))
    return _saved("setup.order_filtering", *ORDER_FILTERING, _("Order filtering saved."),
                  **_order_filtering_context(db.session))


def order_import_context(session: Session, *, message: str = "", message_level: str = "error") -> dict:
    """What the import panel shows: the latest run, whether to keep polling, the last runs and who started them."""
    runs = orders.recent_runs(session)
    run = runs[0] if runs else None
    panel = panel_state(run)
    user_ids = {r.started_by_id for r in runs if r.started_by_id}
    usernames = dict(session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).tuples().all()) \
        if user_ids else {}
    stored = settings.get_value(session, settings.ORDER_FILTERING)
    return {"import_run": run, "import_runs": runs, "import_polling": panel.polling,
            "import_stale": panel.stale, "import_waiting_for_worker": panel.waiting_for_worker,
            "import_usernames": usernames, "import_ready": isinstance(stored, dict) and bool(stored.get("statuses")),
            "import_message": message, "import_message_level": message_level,
            "skip_reasons": orders.SKIP_REASONS, "import_summary": orders.summary_text}


def _panel(http_status: int = 200, toast: tuple[str, str] | None = None, **context):
    """The import panel (an htmx swap of #order-import)."""
    message, level = toast or (None, "success")
    return answer("setup/_order_import.html", code=http_status, toast=message, level=level, form=FlaskForm(),
                  **order_import_context(db.session, **context))


@bp.get("/order-filtering/import")
def order_import_status():
    """The latest import's progress and summary; the panel polls it every second while a run is active."""
    if not is_fragment_request():
        return redirect(url_for("setup.order_filtering") + "#order-import")
    return _panel()


@bp.post("/order-filtering/import")
def order_import():
    """Start an order import on the job queue ("Fetch orders now"; full=1 reads every order again)."""
    full = request.form.get("full") == "1"
    try:
        run = orders.execute(db.session, user_id=current_user.id, full=full)
    except orders.ImportAlreadyRunning as exc:
        text, level, code = exc.message, "info", 409
    except DomainError as exc:
        db.session.rollback()
        text, level, code = exc.message, "error", 422
    else:
        code = 200
        if run.status == run.FAILED:
            text, level = _("Order import #%(id)s stopped: %(error)s", id=run.id,
                              error=run.error.splitlines()[0] if run.error else ""), "error"
        elif run.status == run.DONE:
            text, level = _("Order import #%(id)s: %(summary)s", id=run.id, summary=orders.summary_text(run)), "success"
        else:
            text, level = _("Order import #%(id)s started.", id=run.id), "success"
    if not is_fragment_request():
        flash(text, level)
        return redirect(url_for("setup.order_filtering") + "#order-import", code=303)
    if code >= 400:
        return _panel(code, message=text, message_level=level)
    return _panel(toast=(text, level))
