"""Cargo companies (setup step 14, admins only), in the vendor's shape; credentials are stored encrypted."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from portal.api.auth import caller
from portal.api.operations import operation
from portal.api.schemas import Answer, Body
from portal.cargo import service as cargo
from portal.extensions import db


class CargoCompany(Answer):
    """A cargo company with its credentials masked."""

    id: int
    name: str
    erp_code: str
    is_managed_by_oms: bool = Field(description="Shipping management by the OMS.")
    is_demo_client: bool
    shipping_company: str = Field(examples=["yurtici", "aras", "mng", "ups"])
    conf: dict[str, Any] = Field(description="The shipping company's credential fields (secrets masked), or "
                                             "{\"klass\": \"oms.shipments.clients.demo_client.<Name>\"}.")


class NewCargoCompany(Body):
    """A cargo company to create."""

    name: str = Field(max_length=120)
    erp_code: str = Field(max_length=64)
    is_managed_by_oms: bool = True
    is_demo_client: bool = False
    shipping_company: str = Field(max_length=64)
    conf: dict[str, Any] = Field(description="Credential fields, or a demo client's klass.")


@operation("GET", "/oms/cargo-company/", answer=list[CargoCompany], tag="cargo",
           summary="Cargo companies, secrets masked (admins only).")
def list_cargo_companies():
    """Every cargo company, credentials masked."""
    return [CargoCompany.model_validate(cargo.company_json(c)) for c in cargo.list_companies(db.session)]


@operation("POST", "/oms/cargo-company/", body=NewCargoCompany, answer=CargoCompany, status=201, tag="cargo",
           summary="Create a cargo company (admins only).",
           description="conf holds the shipping company's credential fields, or a demo client's klass. It is "
                       "stored encrypted; secrets are never returned in full.",
           example={"name": "test", "erp_code": "test_erp_code", "is_managed_by_oms": True, "is_demo_client": True,
                    "shipping_company": "yurtici",
                    "conf": {"klass": "oms.shipments.clients.demo_client.DemoShippingClient"}})
def create_cargo_company(body: NewCargoCompany):
    """Create a cargo company in the vendor's shape."""
    company, _created = cargo.save_company(
        db.session, name=body.name, erp_code=body.erp_code, is_managed_by_oms=body.is_managed_by_oms,
        is_demo_client=body.is_demo_client, shipping_company=body.shipping_company, conf=body.conf,
        user_id=caller().user_id)
    return CargoCompany.model_validate(cargo.company_json(company))
