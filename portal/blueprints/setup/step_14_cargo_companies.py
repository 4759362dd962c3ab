"""Setup step 14, Cargo companies: cargo integrations or demo clients."""
from __future__ import annotations

from typing import Any

from flask import current_app, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from portal.blueprints.setup import bp
from portal.blueprints.setup.shared_catalog import _done, _respond
from portal.cargo import service as cargo
from portal.cargo.companies import (
    DEMO_CLIENTS,
    SHIPPING_COMPANIES,
    ShippingCompany,
    demo_client_klass,
    demo_client_name,
)
from portal.cargo.models import CargoCompany
from portal.errors import DomainError
from portal.extensions import db
from portal.web import plain_int

CARGO_TEMPLATE = "setup/cargo_companies.html"


def _is_secret(shipping: ShippingCompany | None, key: str) -> bool:
    """Whether a conf key is one of the shipping company's secret fields (never shown, never sent back)."""
    field = shipping.field(key) if shipping is not None else None
    return field is not None and field.secret


DEMO_COMPANY = {"name": "Demo Kargo", "erp_code": "DEMO-KARGO", "shipping_company": "yurtici",
                "demo_client": "DemoShippingClient"}


def _demo_cargo() -> bool:
    """Whether the new-company form starts as the demo's cargo company: in the demo, while there is none yet."""
    return bool(current_app.config.get("DEMO_SANDBOX_URL")) and not cargo.list_companies(db.session)


def _cargo_values(company=None) -> dict:
    """The form's values for a company being edited: secrets left out, demo client by name.

    In the demo (scripts/run-demo) with no cargo company yet, a new one starts as a demo client that creates
    shipments at once, so the admin adds it in one tap; every field can still be changed.
    """
    if company is None:
        if _demo_cargo():
            return {"company_id": None, "is_managed_by_oms": True, "is_demo_client": True, "conf": {},
                    **DEMO_COMPANY}
        return {"company_id": None, "name": "", "erp_code": "", "is_managed_by_oms": True, "is_demo_client": False,
                "shipping_company": "", "conf": {}, "demo_client": ""}
    conf = cargo.public_conf(company)
    shipping = SHIPPING_COMPANIES.get(company.shipping_company)
    shown = {k: v for k, v in conf.items() if not _is_secret(shipping, k)}
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
        masks = {k: v for k, v in cargo.public_conf(editing).items() if _is_secret(shipping, k)}
    return {"shipping": shipping, "demo_clients": DEMO_CLIENTS, "masks": masks}


def _cargo_response(code: int = 200, *, editing=None, values=None, state_changed=False, **context):
    """The cargo companies page or its panel."""
    values = values if values is not None else _cargo_values(editing)
    return _respond(CARGO_TEMPLATE, "cargo_panel", cargo.STEP_KEY, code, state_changed=state_changed,
                    companies=cargo.list_companies(db.session), shipping_companies=SHIPPING_COMPANIES,
                    public_conf=cargo.public_conf, conf_is_readable=cargo.conf_is_readable,
                    demo_client_name=demo_client_name, editing=editing, values=values,
                    demo_default=editing is None and values.get("name") == DEMO_COMPANY["name"] and _demo_cargo(),
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
    values: dict[str, Any] = {"company_id": request.form.get("company_id", type=plain_int), "name": request.form.get("name", ""),
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
        values["conf"] = {k: v for k, v in values["conf"].items() if not _is_secret(shipping, k)}
        return _cargo_response(422, editing=editing, values=values, error=exc.message, error_field=exc.field)
    message = (_("Cargo company %(name)s (%(code)s) added.", name=company.name, code=company.erp_code) if created
               else _("Cargo company %(name)s (%(code)s) saved.", name=company.name, code=company.erp_code))
    return _done(message, "setup.cargo_companies",
                 lambda: _cargo_response(state_changed=True))


@bp.post("/cargo-companies/<int:company_id>/delete")
def delete_cargo_company(company_id: int):
    """Remove a cargo company."""
    cargo.delete_company(db.session, company_id, user_id=current_user.id)
    return _done(_("Cargo company removed."), "setup.cargo_companies", lambda: _cargo_response(state_changed=True))
