"""Setup wizard step 14, cargo companies: real integrations with credentials that depend on the shipping
company, or demo clients. conf is encrypted, secrets are masked and kept when not retyped, every change audited.
"""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from portal import crypto
from portal.accounts import auth
from portal.cargo import service as cargo
from portal.cargo.models import CargoCompany
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.settings.models import SettingChange
from portal.setup import service as wizard
from portal.setup.models import SetupStep

HTMX = {"HX-Request": "true"}
PAGE = "/setup/cargo-companies"
API = "/api/v1/oms/cargo-company/"
DEMO = "oms.shipments.clients.demo_client.DemoShippingClient"
MNG_CONF = {"username": "brand", "password": "Mng-Secret-Pass", "name": "Brand Ltd", "address": "Levent, Istanbul",
            "query_shipment_url": "https://mng.example.com/query",
            "create_shipment_url": "https://mng.example.com/create"}


@pytest.fixture
def admin(make, auth_actions):
    """A logged-in admin."""
    user = make.user("root", role="admin")
    auth_actions.login("root")
    return user


def _save(**overrides) -> CargoCompany:
    """Save an MNG integration (or what the overrides say) through the domain function."""
    fields = {"name": "MNG", "erp_code": "mng_erp", "is_managed_by_oms": True, "is_demo_client": False,
              "shipping_company": "mng", "conf": dict(MNG_CONF)}
    fields.update(overrides)
    company, _ = cargo.save_company(db.session, **fields, user_id=None)
    return company


def _companies() -> list[CargoCompany]:
    """Every stored cargo company, read afresh."""
    db.session.expire_all()
    return list(db.session.scalars(select(CargoCompany).order_by(CargoCompany.id)))


def _audits() -> list[tuple[str, str, str]]:
    """(area, key, action) of every audit row."""
    return [(r.area, r.key, r.action) for r in db.session.scalars(select(SettingChange).order_by(SettingChange.id))]


def _state() -> str:
    """Step 14's state, read afresh."""
    db.session.expire_all()
    return wizard.status(db.session, "cargo_companies").state


# The domain

def test_conf_is_one_encrypted_json_document_and_secrets_are_masked(app):
    company = _save()

    stored = _companies()[0]
    assert "Mng-Secret-Pass" not in stored.conf_encrypted and "brand" not in stored.conf_encrypted
    assert json.loads(crypto.decrypt(stored.conf_encrypted)) == MNG_CONF
    assert cargo.company_json(company) == {
        "id": company.id, "name": "MNG", "erp_code": "mng_erp", "is_managed_by_oms": True, "is_demo_client": False,
        "shipping_company": "mng", "conf": {**MNG_CONF, "password": "********ss"}}
    assert _audits() == [("cargo_company", "mng_erp", "create")]
    assert _state() == SetupStep.DONE


def test_a_demo_client_stores_only_its_class(app):
    _save(name="test", erp_code="test_erp_code", is_demo_client=True, shipping_company="yurtici",
          conf={"klass": DEMO})

    stored = _companies()[0]
    assert json.loads(crypto.decrypt(stored.conf_encrypted)) == {"klass": DEMO}
    assert cargo.public_conf(stored) == {"klass": DEMO}


@pytest.mark.parametrize("overrides, field, message", [
    ({"name": " "}, "name", "The name is required."),
    ({"erp_code": "mng erp"}, "erp_code", "letters, digits"),
    ({"shipping_company": "pigeon"}, "shipping_company", "Choose a shipping company."),
    ({"conf": {**MNG_CONF, "password": ""}}, "conf.password", "Password is required for MNG Kargo."),
    ({"conf": {k: v for k, v in MNG_CONF.items() if k != "address"}}, "conf.address", "Sender address is required"),
    ({"conf": {**MNG_CONF, "query_shipment_url": "ftp://mng.example.com"}}, "conf.query_shipment_url",
     "must start with http:// or https://"),
    ({"conf": {**MNG_CONF, "customer_code": "C1"}}, "conf.customer_code", "MNG Kargo has no field 'customer_code'."),
    ({"is_demo_client": True, "conf": {"klass": "os.system"}}, "conf.klass", "Unknown demo client"),
    ({"is_demo_client": True, "conf": {}}, "conf.klass", "Choose a demo client."),
    ({"is_managed_by_oms": "yes"}, "is_managed_by_oms", "must be true or false"),
    ({"conf": ["username"]}, "conf", "conf must be an object."),
])
def test_bad_input_is_refused_and_nothing_is_saved(app, overrides, field, message):
    with pytest.raises(ValidationFailed) as caught:
        _save(**overrides)

    assert caught.value.field == field
    assert message in caught.value.message
    db.session.rollback()
    assert _companies() == [] and _audits() == []


def test_optional_fields_may_be_left_out(app):
    _save(shipping_company="yurtici", conf={"username": "brand", "password": "pw-123"})

    assert json.loads(crypto.decrypt(_companies()[0].conf_encrypted)) == {"username": "brand", "password": "pw-123"}


def test_erp_codes_are_unique(app):
    _save()

    with pytest.raises(ValidationFailed, match="Another cargo company \\(MNG\\) already has the ERP code mng_erp."):
        _save(name="MNG again")


def test_editing_without_retyping_a_secret_keeps_it_until_the_company_changes(app):
    company = _save()

    _save(company_id=company.id, conf={**MNG_CONF, "password": "", "username": "brand2"})
    assert json.loads(crypto.decrypt(_companies()[0].conf_encrypted))["password"] == "Mng-Secret-Pass"
    _save(company_id=company.id, conf={**MNG_CONF, "password": "********ss"})
    assert json.loads(crypto.decrypt(_companies()[0].conf_encrypted))["password"] == "Mng-Secret-Pass"

    with pytest.raises(ValidationFailed, match="Password is required for Aras Kargo"):
        _save(company_id=company.id, shipping_company="aras", conf={"username": "b", "customer_code": "C1"})
    db.session.rollback()
    assert [a[2] for a in _audits()] == ["create", "update", "update"]


def test_removing_the_last_company_reopens_the_step(app):
    company = _save()

    cargo.delete_company(db.session, company.id, user_id=None)

    assert _companies() == []
    assert _audits()[-1] == ("cargo_company", "mng_erp", "delete")
    assert _state() == SetupStep.NEEDS_ATTENTION


# The wizard page

def test_only_admins_open_the_step(client, make, auth_actions):
    make.user("brand", role="brand_manager")
    auth_actions.login("brand")

    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, data={"name": "x", "erp_code": "x", "shipping_company": "aras"}).status_code == 403
    assert _companies() == []


def test_the_credentials_part_follows_the_shipping_company_and_the_demo_box(client, admin):
    aras = client.get(f"{PAGE}/conf?shipping_company=aras", headers=HTMX).get_data(as_text=True)
    mng = client.get(f"{PAGE}/conf?shipping_company=mng", headers=HTMX).get_data(as_text=True)
    demo = client.get(f"{PAGE}/conf?shipping_company=mng&is_demo_client=on", headers=HTMX).get_data(as_text=True)
    nothing = client.get(f"{PAGE}/conf", headers=HTMX).get_data(as_text=True)

    assert aras.lstrip().startswith('<fieldset id="cargo-conf"')
    assert 'name="conf-customer_code"' in aras and 'name="conf-query_shipment_url"' not in aras
    assert 'name="conf-create_shipment_url" type="url"' in mng and 'name="conf-password" type="password"' in mng
    assert 'name="demo_client" value="DemoShippingClient"' in demo and 'name="conf-username"' not in demo
    assert "Choose a shipping company" in nothing


def test_admin_adds_a_cargo_company_and_the_secret_is_never_shown(client, admin):
    form = {"name": "MNG", "erp_code": "mng_erp", "is_managed_by_oms": "on", "shipping_company": "mng",
            **{f"conf-{k}": v for k, v in MNG_CONF.items()}}

    response = client.post(PAGE, data=form, headers=HTMX)

    assert response.status_code == 200
    assert "MNG (mng_erp) added" in response.headers["HX-Trigger"]
    html = response.get_data(as_text=True)
    assert "Mng-Secret-Pass" not in html and "********ss" in html
    assert 'id="step-state" hx-swap-oob="true"' in html and "Done" in html
    stored = _companies()[0]
    assert "Mng-Secret-Pass" not in stored.conf_encrypted
    assert json.loads(crypto.decrypt(stored.conf_encrypted)) == MNG_CONF
    assert _audits() == [("cargo_company", "mng_erp", "create")]

    edit = client.get(f"{PAGE}?edit={stored.id}").get_data(as_text=True)
    assert "Mng-Secret-Pass" not in edit
    assert 'placeholder="********ss"' in edit and 'value="Levent, Istanbul"' in edit

    kept = client.post(PAGE, data={**form, "company_id": str(stored.id), "conf-password": "", "name": "MNG Kargo"})
    assert kept.status_code == 302
    stored = _companies()[0]
    assert stored.name == "MNG Kargo"
    assert json.loads(crypto.decrypt(stored.conf_encrypted))["password"] == "Mng-Secret-Pass"
    assert _audits()[-1] == ("cargo_company", "mng_erp", "update")


def test_admin_picks_a_demo_client(client, admin):
    response = client.post(PAGE, data={"name": "test", "erp_code": "test_erp_code", "is_managed_by_oms": "on",
                                       "is_demo_client": "on", "shipping_company": "yurtici",
                                       "demo_client": "DemoFailingShippingClient"})

    assert response.status_code == 302
    stored = _companies()[0]
    assert stored.is_demo_client and stored.is_managed_by_oms
    assert json.loads(crypto.decrypt(stored.conf_encrypted)) == {
        "klass": "oms.shipments.clients.demo_client.DemoFailingShippingClient"}
    page = client.get(PAGE).get_data(as_text=True)
    assert "Demo client</span> DemoFailingShippingClient" in page


def test_a_bad_form_keeps_what_was_typed_except_secrets_and_saves_nothing(client, admin):
    form = {"name": "Aras", "erp_code": "aras_erp", "shipping_company": "aras", "conf-username": "brand",
            "conf-password": "Typed-Secret-1", "conf-customer_code": ""}

    response = client.post(PAGE, data=form, headers=HTMX)

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="cargo-conf-customer_code-error" role="alert">Customer code is required for Aras Kargo.' in html
    assert 'value="brand"' in html and 'value="aras_erp"' in html
    assert "Typed-Secret-1" not in html
    assert _companies() == [] and _audits() == []


def test_a_duplicate_erp_code_is_refused_beside_the_field(client, admin):
    _save()

    response = client.post(PAGE, data={"name": "Other", "erp_code": "mng_erp", "shipping_company": "yurtici",
                                       "conf-username": "u", "conf-password": "p"})

    assert response.status_code == 422
    assert b'id="cargo-erp-error" role="alert">Another cargo company (MNG) already has the ERP code mng_erp.' \
        in response.data
    assert len(_companies()) == 1


def test_removing_a_company_from_the_page(client, admin):
    company = _save()

    response = client.post(f"{PAGE}/{company.id}/delete", headers=HTMX)

    assert response.status_code == 200 and "removed" in response.headers["HX-Trigger"]
    assert _companies() == []
    assert b"No cargo company yet" in response.data


# The API

@pytest.fixture
def token(make):
    """An admin's API token header."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, make.user('api-admin', role='admin'))}"}


def test_the_api_creates_and_lists_cargo_companies_in_the_vendor_shape(client, token):
    seed_demo = {"shipping_company": "yurtici", "conf": {"klass": DEMO}, "name": "test", "erp_code": "test_erp_code",
                 "is_managed_by_oms": True, "is_demo_client": True}

    created = client.post(API, json=seed_demo, headers=token)
    integration = client.post(API, json={"name": "MNG", "erp_code": "mng_erp", "is_managed_by_oms": True,
                                         "is_demo_client": False, "shipping_company": "mng", "conf": MNG_CONF},
                              headers=token)
    listed = client.get(API, headers=token)

    assert created.status_code == 201 and created.json["conf"] == {"klass": DEMO}
    assert integration.status_code == 201 and integration.json["conf"]["password"] == "********ss"
    assert "Mng-Secret-Pass" not in listed.get_data(as_text=True)
    assert [c["erp_code"] for c in listed.json] == ["mng_erp", "test_erp_code"]
    assert [a[2] for a in _audits()] == ["create", "create"]


def test_the_api_refuses_bad_input_and_non_admins(client, make, token):
    staff = auth.create_api_token(db.session, make.user("clerk"))

    bad = client.post(API, json={"name": "Aras", "erp_code": "aras", "shipping_company": "aras",
                                 "conf": {"username": "u"}}, headers=token)
    refused = client.post(API, json={"name": "x"}, headers={"Authorization": f"Token {staff}"})
    listing = client.get(API, headers={"Authorization": f"Token {staff}"})

    assert bad.status_code == 400 and bad.json["field"] == "conf.password"
    assert refused.status_code == 403 and listing.status_code == 403
    assert _companies() == []


def test_with_csrf_on_a_post_needs_the_forms_token(client, admin, app):
    app.config["WTF_CSRF_ENABLED"] = True
    form = {"name": "Aras", "erp_code": "aras_erp", "shipping_company": "aras", "conf-username": "brand",
            "conf-password": "pw-123456", "conf-customer_code": "C-1"}

    forged = client.post(PAGE, data=form, headers=HTMX)
    page = client.get(PAGE).get_data(as_text=True)
    token = re.search(r'id="cargo-form".*?name="csrf_token"[^>]*value="([^"]+)"', page, re.S).group(1)
    accepted = client.post(PAGE, data={**form, "csrf_token": token}, headers=HTMX)

    assert forged.status_code == 400
    assert accepted.status_code == 200
    assert [c.erp_code for c in _companies()] == ["aras_erp"]
