"""Setup step 10, Product stock integration: where the OMS asks for physical stock."""
from __future__ import annotations

from flask import current_app, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from portal import explain
from portal.blueprints.setup import bp
from portal.blueprints.setup.shared_catalog import _context, _done, _form_int, _respond
from portal.errors import DomainError
from portal.extensions import db
from portal.integrations import service as integrations
from portal.integrations.engines import ENGINES, get_engine
from portal.integrations.models import StockIntegration
from portal.web import answer, plain_int

STOCK_TEMPLATE = "setup/stock_integration.html"


SANDBOX_ENGINE = "omnitron"


def _sandbox_stock_url() -> str:
    """The demo sandbox's stock service for the Omnitron engine, or "" outside the demo."""
    sandbox = current_app.config.get("DEMO_SANDBOX_URL") or ""
    return f"{sandbox}/stock-engines/{SANDBOX_ENGINE}" if sandbox else ""


def _stock_values(integration) -> dict:
    """The form's values for an integration being edited (never its password).

    In the demo a new integration starts as the sandbox's stock service, unless one already uses that URL.
    """
    if integration is None:
        url = _sandbox_stock_url()
        if url and not any(i.url == url for i in integrations.list_integrations(db.session)):
            return {"stock_engine_type": SANDBOX_ENGINE, "url": url, "username": "", "is_active": True}
        return {"stock_engine_type": "", "url": "", "username": "", "is_active": True}
    return {"stock_engine_type": integration.stock_engine_type, "url": integration.url,
            "username": integration.username, "is_active": integration.is_active}


def _stock_response(code: int = 200, *, editing=None, values=None, state_changed=False, **context):
    """The stock integration page or its panel."""
    values = values if values is not None else _stock_values(editing)
    return _respond(STOCK_TEMPLATE, "stock_panel", integrations.STEP_KEY, code, state_changed=state_changed,
                    engines=ENGINES, integrations=integrations.list_integrations(db.session), editing=editing,
                    values=values, engine=get_engine(values.get("stock_engine_type") or ""),
                    password_mask=integrations.password_mask, keeps_password=integrations.keeps_password,
                    stock_problem=explain.stock_record, sandbox_stock_url=_sandbox_stock_url(), **context)


@bp.get("/stock-integration")
def stock_integration():
    """Step 10: the stock integrations, and a form to add one or edit the one named by ?edit=."""
    edit_id = request.args.get("edit", type=plain_int)
    editing = integrations.get_integration(db.session, edit_id) if edit_id else None
    return _stock_response(editing=editing)


@bp.get("/stock-integration/credentials")
def stock_credentials():
    """The credential fields of the chosen engine (swapped in when the engine select changes)."""
    integration_id = request.args.get("integration_id", type=plain_int)
    editing = integrations.get_integration(db.session, integration_id) if integration_id else None
    engine = get_engine(request.args.get("stock_engine_type") or "")
    values = {"username": request.args.get("username", editing.username if editing else "")}
    return render_template("setup/_stock_credentials.html", engine=engine, editing=editing, values=values,
                           password_mask=integrations.password_mask, keeps_password=integrations.keeps_password,
                           error=None, error_field=None)


@bp.post("/stock-integration")
def save_stock_integration():
    """Add or change a stock integration; the password is kept when left empty."""
    integration_id = None
    try:
        integration_id = _form_int("integration_id")
        integration, created = integrations.save_integration(
            db.session, url=request.form.get("url"), stock_engine_type=request.form.get("stock_engine_type"),
            username=request.form.get("username"), password=request.form.get("password"),
            is_active=request.form.get("is_active") == "on", integration_id=integration_id,
            user_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        editing = db.session.get(StockIntegration, integration_id) if integration_id else None
        values = {"stock_engine_type": request.form.get("stock_engine_type", ""), "url": request.form.get("url", ""),
                  "username": request.form.get("username", ""), "is_active": request.form.get("is_active") == "on"}
        return _stock_response(422, editing=editing, values=values, error=exc.message, error_field=exc.field)
    message = (_("Stock integration %(url)s added. Test its connection to finish this step.", url=integration.url)
               if created else
               _("Stock integration %(url)s saved. Test its connection to finish this step.", url=integration.url))
    return _done(message,
                 "setup.stock_integration", lambda: _stock_response(state_changed=True))


@bp.post("/stock-integration/<int:integration_id>/test")
def test_stock_integration(integration_id: int):
    """Call the integration's stock service now and show the result in its row."""
    outcome = integrations.run_connection_test(db.session, integration_id, user_id=current_user.id)

    def row():
        """The tested integration's row and the step's state chip."""
        context = _context(integrations.STEP_KEY, integration=outcome.integration,
                           engines=ENGINES, password_mask=integrations.password_mask,
                           stock_problem=explain.stock_record)
        return answer("setup/_stock_row.html", "setup/_stock_row.html", "setup/_step_state_oob.html",
                      fragment=True, **context)

    level = "success" if outcome.result.ok else "error"
    problem = explain.stock_test(outcome.result, get_engine(outcome.integration.stock_engine_type),
                                 outcome.integration.url)
    return _done(problem.advice if problem else outcome.result.message, "setup.stock_integration", row, level)


@bp.post("/stock-integration/<int:integration_id>/delete")
def delete_stock_integration(integration_id: int):
    """Remove a stock integration."""
    integrations.delete_integration(db.session, integration_id, user_id=current_user.id)
    return _done(_("Stock integration removed."), "setup.stock_integration",
                 lambda: _stock_response(state_changed=True))
