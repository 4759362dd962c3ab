"""Setup step 8, second half: "Fetch orders now" runs the order import on the job queue and shows its summary.

The panel lives on the order filtering page. While a run is queued or running it asks for itself
every second (the server leaves the polling trigger out once the run has ended); then it shows what
the run fetched, created, found already imported, skipped (with the reasons) and failed.
"""
from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.blueprints.setup import bp
from portal.errors import DomainError
from portal.extensions import db
from portal.orders import service as orders
from portal.settings import service as settings
from portal.web import is_fragment_request, with_toast


def order_import_context(session: Session, *, message: str = "", message_level: str = "error") -> dict:
    """What the import panel shows: the latest run, whether to keep polling, the last runs and who started them."""
    runs = orders.recent_runs(session)
    run = runs[0] if runs else None
    stale = orders.is_stale(run)
    user_ids = {r.started_by_id for r in runs if r.started_by_id}
    usernames = dict(session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).tuples().all()) \
        if user_ids else {}
    stored = settings.get_value(session, settings.ORDER_FILTERING)
    return {"import_run": run, "import_runs": runs, "import_polling": orders.is_active(run) and not stale,
            "import_stale": stale, "import_waiting_for_worker": orders.waiting_for_worker(run),
            "import_usernames": usernames, "import_ready": isinstance(stored, dict) and bool(stored.get("statuses")),
            "import_message": message, "import_message_level": message_level,
            "skip_reasons": orders.SKIP_REASONS, "import_summary": orders.summary_text}


def _panel(http_status: int = 200, toast: tuple[str, str] | None = None, **context):
    """The import panel (an htmx swap of #order-import)."""
    body = render_template("setup/_order_import.html", form=FlaskForm(), **order_import_context(db.session, **context))
    response = make_response(body, http_status)
    response.vary.add("HX-Request")
    if toast:
        with_toast(response, *toast)
    return response


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
    if not FlaskForm().validate_on_submit():
        text, level, code = "The form expired; please reload the page and try again.", "error", 400
    else:
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
                text, level = f"Order import #{run.id} stopped: {run.error.splitlines()[0] if run.error else ''}", "error"
            elif run.status == run.DONE:
                text, level = f"Order import #{run.id}: {orders.summary_text(run)}", "success"
            else:
                text, level = f"Order import #{run.id} started.", "success"
    if not is_fragment_request():
        flash(text, level)
        return redirect(url_for("setup.order_filtering") + "#order-import", code=303)
    if code >= 400:
        return _panel(code, message=text, message_level=level)
    return _panel(toast=(text, level))
