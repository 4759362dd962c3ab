"""Setup wizard routes: step 10 product stock integration, step 11 scenarios, step 14 cargo companies.

Each route parses the form, calls one domain function and answers with the page, or (for htmx) the
step's panel or a row, plus an out-of-band update of the step's state chip and a toast.
"""
from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.blueprints.setup import bp
from portal.blueprints.setup.routes import step_url
from portal.cargo import service as cargo
from portal.cargo.companies import DEMO_CLIENTS, SHIPPING_COMPANIES, demo_client_klass, demo_client_name
from portal.cargo.models import CargoCompany
from portal.errors import DomainError, ValidationFailed
from portal.extensions import db
from portal.integrations import service as integrations
from portal.integrations.engines import ENGINES, get_engine
from portal.integrations.models import StockIntegration
from portal.scenarios import service as scenarios
from portal.setup import service as wizard
from portal.setup.steps import BY_KEY
from portal.web import is_fragment_request, plain_int, render_block, with_toast

FORM_EXPIRED = "The form expired; reload the page and try again."


def _context(key: str, **context) -> dict:
    """The wizard frame's context for a step page: its state, the CSRF form and step links."""
    return {"status": wizard.status(db.session, key), "form": FlaskForm(), "step_url": step_url, **context}


def _respond(template: str, block: str, key: str, code: int = 200, *, state_changed: bool = False, **context):
    """The whole page, or for an htmx swap the named block (plus the step's state chip when it may have changed)."""
    context = _context(key, **context)
    if is_fragment_request():
        body = render_block(template, block, **context)
        if state_changed:
            body += render_template("setup/_step_state.html", oob=True, **context)
    else:
        body = render_template(template, **context)
    response = make_response(body, code)
    response.vary.add("HX-Request")
    return response


def _csrf_ok() -> bool:
    """True when the posted form carries a valid CSRF token."""
    return FlaskForm().validate_on_submit()


def _done(message: str, endpoint: str, fragment, level: str = "success"):
    """After a successful action: the fragment with a toast for htmx, else flash and redirect."""
    if is_fragment_request():
        return with_toast(fragment(), message, level)
    flash(message, "success" if level == "success" else "error")
    return redirect(url_for(endpoint))


def _form_int(name: str) -> int | None:
    """An optional whole-number form field (None when empty); raises ValidationFailed otherwise."""
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    if plain_int(raw) is None:
        raise ValidationFailed(f"{name} must be a whole number.", field=name)
    return plain_int(raw)


# Step 10: product stock integration

STOCK_TEMPLATE = "setup/stock_integration.html"


def _stock_values(integration) -> dict:
    """The form's values for an integration being edited (never its password)."""
    if integration is None:
        return {"stock_engine_type": "", "url": "", "username": "", "is_active": True}
    return {"stock_engine_type": integration.stock_engine_type, "url": integration.url,
            "username": integration.username, "is_active": integration.is_active}


def _stock_response(code: int = 200, *, editing=None, values=None, state_changed=False, **context):
    """The stock integration page or its panel."""
    values = values if values is not None else _stock_values(editing)
    return _respond(STOCK_TEMPLATE, "stock_panel", integrations.STEP_KEY, code, state_changed=state_changed,
                    engines=ENGINES, integrations=integrations.list_integrations(db.session), editing=editing,
                    values=values, engine=get_engine(values.get("stock_engine_type") or ""),
                    password_mask=integrations.password_mask, keeps_password=integrations.keeps_password, **context)


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
        if not _csrf_ok():
            raise ValidationFailed(FORM_EXPIRED)
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
    verb = "added" if created else "saved"
    return _done(f"Stock integration {integration.url} {verb}. Test its connection to finish this step.",
                 "setup.stock_integration", lambda: _stock_response(state_changed=True))


@bp.post("/stock-integration/<int:integration_id>/test")
def test_stock_integration(integration_id: int):
    """Call the integration's stock service now and show the result in its row."""
    if not _csrf_ok():
        return _stock_response(400, error=FORM_EXPIRED)
    outcome = integrations.run_connection_test(db.session, integration_id, user_id=current_user.id)

    def row():
        """The tested integration's row and the step's state chip."""
        context = _context(integrations.STEP_KEY, integration=outcome.integration,
                           engines=ENGINES, password_mask=integrations.password_mask)
        body = render_template("setup/_stock_row.html", **context)
        body += render_template("setup/_step_state.html", oob=True, **context)
        response = make_response(body)
        response.vary.add("HX-Request")
        return response

    level = "success" if outcome.result.ok else "error"
    return _done(outcome.result.message, "setup.stock_integration", row, level)


@bp.post("/stock-integration/<int:integration_id>/delete")
def delete_stock_integration(integration_id: int):
    """Remove a stock integration."""
    if not _csrf_ok():
        return _stock_response(400, error=FORM_EXPIRED)
    integrations.delete_integration(db.session, integration_id, user_id=current_user.id)
    return _done("Stock integration removed.", "setup.stock_integration",
                 lambda: _stock_response(state_changed=True))


# Step 11: scenarios

SCENARIO_TEMPLATE = "setup/scenarios.html"


def _scenario_values(scenario=None, channel_id: int | None = None) -> dict:
    """The editor's values for a scenario (or a new one for a channel)."""
    if scenario is None:
        return {"scenario_id": None, "channel_id": channel_id, "name": "", "is_active": True,
                "rules": [scenarios.SORT_BY_PRIORITY], "locations": {}}
    return {"scenario_id": scenario.id, "channel_id": scenario.channel_id, "name": scenario.name,
            "is_active": scenario.is_active, "rules": list(scenario.rules or []),
            "locations": {row.stock_location_id: row.priority for row in scenario.locations}}


def _scenario_response(code: int = 200, *, values=None, state_changed=False, **context):
    """The scenarios page or its panel."""
    return _respond(SCENARIO_TEMPLATE, "scenario_panel", scenarios.STEP_KEY, code, state_changed=state_changed,
                    channels=scenarios.list_channels(db.session),
                    stock_locations=scenarios.list_stock_locations(db.session), values=values,
                    rules=scenarios.RULES, rule_label=scenarios.rule_label,
                    channels_url=step_url(BY_KEY["channels"]), **context)


# The endpoint is named after the step (portal/setup/steps.py); the function name would hide the service module.
@bp.get("/scenarios", endpoint="scenarios")
def scenarios_page():
    """Step 11: each channel's scenarios; ?edit=<id> or ?new=<channel id> opens the editor."""
    edit_id = request.args.get("edit", type=plain_int)
    new_for = request.args.get("new", type=plain_int)
    values = None
    if edit_id:
        values = _scenario_values(scenarios.get_scenario(db.session, edit_id))
    elif new_for is not None:
        values = _scenario_values(channel_id=new_for)
    return _scenario_response(values=values)


def _posted_scenario() -> dict:
    """The editor's posted values: rules from the checkboxes and radios, locations with their priorities."""
    rules = request.form.getlist("rule")
    for group in ("kind", "sort"):
        if request.form.get(group):
            rules.append(request.form[group])
    locations = {}
    for raw in request.form.getlist("location"):
        if plain_int(raw) is not None:
            locations[plain_int(raw)] = (request.form.get(f"priority-{raw}") or "").strip()
    return {"scenario_id": request.form.get("scenario_id", type=plain_int), "channel_id": request.form.get("channel_id",
            type=plain_int), "name": request.form.get("name", ""), "is_active": request.form.get("is_active") == "on",
            "rules": rules, "locations": locations}


@bp.post("/scenarios")
def save_scenario():
    """Create or change a scenario from the editor."""
    values = _posted_scenario()
    try:
        if not _csrf_ok():
            raise ValidationFailed(FORM_EXPIRED)
        locations = []
        for location_id, raw in values["locations"].items():
            if raw and plain_int(raw) is None:
                raise ValidationFailed("A priority must be a whole number from 1.", field="locations")
            locations.append((location_id, int(raw) if raw else None))
        scenario = scenarios.save_scenario(
            db.session, channel_id=values["channel_id"], name=values["name"], is_active=values["is_active"],
            rules=values["rules"], locations=locations, scenario_id=values["scenario_id"], user_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        return _scenario_response(422, values=values, error=exc.message, error_field=exc.field)
    return _done(f"Scenario {scenario.name!r} saved.", "setup.scenarios",
                 lambda: _scenario_response(state_changed=True))


@bp.post("/scenarios/<int:scenario_id>/delete")
def delete_scenario(scenario_id: int):
    """Remove a scenario."""
    if not _csrf_ok():
        return _scenario_response(400, error=FORM_EXPIRED)
    scenarios.delete_scenario(db.session, scenario_id, user_id=current_user.id)
    return _done("Scenario removed.", "setup.scenarios", lambda: _scenario_response(state_changed=True))


def _float_arg(name: str) -> float | None:
    """An optional decimal query argument; raises ValidationFailed when it is not a number."""
    raw = (request.args.get(name) or "").strip().replace(",", ".")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be a number like 41.0082.", field=name) from None


@bp.get("/scenarios/<int:scenario_id>/plan")
def plan_scenario(scenario_id: int):
    """Try a scenario on an address: the stock locations it would pick, in order."""
    scenario = scenarios.get_scenario(db.session, scenario_id)
    city = request.args.get("city", "")
    try:
        lat, lon = _float_arg("lat"), _float_arg("lon")
        planned = scenarios.plan_locations(db.session, scenario, city=city or None, lat=lat, lon=lon)
        error = None
    except ValidationFailed as exc:
        planned, lat, lon, error = [], None, None, exc.message
    return render_template("setup/_scenario_plan.html", scenario=scenario, planned=planned, error=error,
                           distance=lambda loc: scenarios.distance_km(loc, lat, lon), city=city)


# Step 14: cargo companies

CARGO_TEMPLATE = "setup/cargo_companies.html"


def _cargo_values(company=None) -> dict:
    """The form's values for a company being edited: secrets left out, demo client by name."""
    if company is None:
        return {"company_id": None, "name": "", "erp_code": "", "is_managed_by_oms": True, "is_demo_client": False,
                "shipping_company": "", "conf": {}, "demo_client": ""}
    conf = cargo.public_conf(company)
    shipping = SHIPPING_COMPANIES.get(company.shipping_company)
    shown = {k: v for k, v in conf.items()
             if not (shipping and shipping.field(k) and shipping.field(k).secret)}
    return {"company_id": company.id, "name": company.name, "erp_code": company.erp_code,
            "is_managed_by_oms": company.is_managed_by_oms, "is_demo_client": company.is_demo_client,
            "shipping_company": company.shipping_company, "conf": {} if company.is_demo_client else shown,
            "demo_client": (demo_client_name(conf.get("klass", "")) or "") if company.is_demo_client else ""}


def _cargo_conf_context(values: dict, editing) -> dict:
    """What the credentials part needs: the company's fields, or the demo clients, and the stored masks."""
    shipping = SHIPPING_COMPANIES.get(values.get("shipping_company") or "")
    masks = {}
    if editing is not None and shipping is not None and editing.shipping_company == shipping.slug \
            and not editing.is_demo_client:
        masks = {k: v for k, v in cargo.public_conf(editing).items() if shipping.field(k) and shipping.field(k).secret}
    return {"shipping": shipping, "demo_clients": DEMO_CLIENTS, "masks": masks}


def _cargo_response(code: int = 200, *, editing=None, values=None, state_changed=False, **context):
    """The cargo companies page or its panel."""
    values = values if values is not None else _cargo_values(editing)
    return _respond(CARGO_TEMPLATE, "cargo_panel", cargo.STEP_KEY, code, state_changed=state_changed,
                    companies=cargo.list_companies(db.session), shipping_companies=SHIPPING_COMPANIES,
                    public_conf=cargo.public_conf, conf_is_readable=cargo.conf_is_readable,
                    demo_client_name=demo_client_name, editing=editing, values=values,
                    **_cargo_conf_context(values, editing), **context)


@bp.get("/cargo-companies")
def cargo_companies():
    """Step 14: the cargo companies, and a form to add one or edit the one named by ?edit=."""
    edit_id = request.args.get("edit", type=plain_int)
    editing = cargo.get_company(db.session, edit_id) if edit_id else None
    return _cargo_response(editing=editing)


@bp.get("/cargo-companies/conf")
def cargo_conf_fields():
    """The credentials part for the chosen shipping company, or the demo client choice."""
    company_id = request.args.get("company_id", type=plain_int)
    editing = cargo.get_company(db.session, company_id) if company_id else None
    values = _cargo_values(editing)
    values.update(shipping_company=request.args.get("shipping_company", ""),
                  is_demo_client=request.args.get("is_demo_client") == "on")
    if editing is None or editing.shipping_company != values["shipping_company"]:
        values["conf"] = {}
    return render_template("setup/_cargo_conf.html", values=values, error=None, error_field=None,
                           **_cargo_conf_context(values, editing))


def _posted_cargo() -> dict:
    """The posted form: the chosen company's fields as conf, or the demo client."""
    values = {"company_id": request.form.get("company_id", type=plain_int), "name": request.form.get("name", ""),
              "erp_code": request.form.get("erp_code", ""),
              "is_managed_by_oms": request.form.get("is_managed_by_oms") == "on",
              "is_demo_client": request.form.get("is_demo_client") == "on",
              "shipping_company": request.form.get("shipping_company", ""),
              "demo_client": request.form.get("demo_client", "")}
    shipping = SHIPPING_COMPANIES.get(values["shipping_company"])
    values["conf"] = {f.name: request.form.get(f"conf-{f.name}", "") for f in shipping.fields} if shipping else {}
    return values


@bp.post("/cargo-companies")
def save_cargo_company():
    """Add or change a cargo company; secrets left empty keep the stored ones."""
    values = _posted_cargo()
    try:
        if not _csrf_ok():
            raise ValidationFailed(FORM_EXPIRED)
        if values["is_demo_client"]:
            demo = values["demo_client"]
            conf = {"klass": demo_client_klass(demo)} if demo in DEMO_CLIENTS else {"klass": demo}
        else:
            conf = values["conf"]
        company, created = cargo.save_company(
            db.session, name=values["name"], erp_code=values["erp_code"],
            is_managed_by_oms=values["is_managed_by_oms"], is_demo_client=values["is_demo_client"],
            shipping_company=values["shipping_company"], conf=conf, company_id=values["company_id"],
            user_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        editing = db.session.get(CargoCompany, values["company_id"]) if values["company_id"] else None
        shipping = SHIPPING_COMPANIES.get(values["shipping_company"])
        # Typed secrets are never sent back to the browser.
        values["conf"] = {k: v for k, v in values["conf"].items()
                          if not (shipping and shipping.field(k) and shipping.field(k).secret)}
        return _cargo_response(422, editing=editing, values=values, error=exc.message, error_field=exc.field)
    verb = "added" if created else "saved"
    return _done(f"Cargo company {company.name} ({company.erp_code}) {verb}.", "setup.cargo_companies",
                 lambda: _cargo_response(state_changed=True))


@bp.post("/cargo-companies/<int:company_id>/delete")
def delete_cargo_company(company_id: int):
    """Remove a cargo company."""
    if not _csrf_ok():
        return _cargo_response(400, error=FORM_EXPIRED)
    cargo.delete_company(db.session, company_id, user_id=current_user.id)
    return _done("Cargo company removed.", "setup.cargo_companies", lambda: _cargo_response(state_changed=True))
