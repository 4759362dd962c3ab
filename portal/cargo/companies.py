"""The shipping companies a cargo company can integrate with, the credentials each needs, and the demo clients.

A real integration's `conf` holds the fields of its shipping company; a demo client's `conf` is
{"klass": "oms.shipments.clients.demo_client.<Name>"} (shared/seeds/oms-basic-setup.txt, step 14).
"""
from __future__ import annotations

from dataclasses import dataclass

TEXT = "text"
SECRET = "secret"
URL = "url"

DEMO_CLIENT_MODULE = "oms.shipments.clients.demo_client"


@dataclass(frozen=True)
class ConfField:
    """One credential field: its key in conf, label, kind (text, secret or url) and whether it is required."""

    name: str
    label: str
    kind: str = TEXT
    required: bool = True
    help: str = ""

    @property
    def secret(self) -> bool:
        """True for passwords and keys: stored encrypted, never shown back in full."""
        return self.kind == SECRET


@dataclass(frozen=True)
class ShippingCompany:
    """A shipping company and the conf fields its client needs."""

    slug: str
    name: str
    fields: tuple[ConfField, ...]

    def field(self, name: str) -> ConfField | None:
        """The field with this name, or None."""
        return next((f for f in self.fields if f.name == name), None)


_USERNAME = ConfField("username", "Username")
_PASSWORD = ConfField("password", "Password", SECRET)

SHIPPING_COMPANIES: dict[str, ShippingCompany] = {company.slug: company for company in (
    ShippingCompany("yurtici", "Yurtiçi Kargo", (
        _USERNAME, _PASSWORD,
        ConfField("company_description", "Company description", required=False,
                  help="Shown on Yurtiçi's waybills; optional."),
    )),
    ShippingCompany("aras", "Aras Kargo", (
        _USERNAME, _PASSWORD,
        ConfField("customer_code", "Customer code", help="Aras's code for the brand's account."),
    )),
    ShippingCompany("mng", "MNG Kargo", (
        _USERNAME, _PASSWORD,
        ConfField("name", "Sender name"),
        ConfField("address", "Sender address"),
        ConfField("query_shipment_url", "Query shipment URL", URL),
        ConfField("create_shipment_url", "Create shipment URL", URL),
    )),
    ShippingCompany("ups", "UPS", (
        ConfField("client_id", "Client ID"),
        ConfField("client_secret", "Client secret", SECRET),
        ConfField("account_number", "Shipper account number"),
        ConfField("api_url", "API URL", URL, required=False, help="Leave empty for UPS's production API."),
    )),
    ShippingCompany("surat", "Sürat Kargo", (
        _USERNAME, _PASSWORD,
        ConfField("customer_code", "Customer code"),
    )),
    ShippingCompany("ptt", "PTT Kargo", (
        _USERNAME, _PASSWORD,
        ConfField("customer_id", "Customer ID"),
        ConfField("api_url", "API URL", URL, required=False),
    )),
    ShippingCompany("hepsijet", "HepsiJET", (
        _USERNAME, _PASSWORD,
        ConfField("company_code", "Company code"),
        ConfField("api_key", "API key", SECRET),
        ConfField("api_url", "API URL", URL),
    )),
)}

# Demo clients by class name: what each does. They stand in for a real cargo integration.
DEMO_CLIENTS: dict[str, str] = {
    "DemoShippingClient": "Creates shipments at once, with made-up tracking numbers.",
    "DemoDelayedShippingClient": "Creates shipments and marks them delivered after a day.",
    "DemoFailingShippingClient": "Refuses every shipment, to rehearse the failure path.",
}


def demo_client_klass(name: str) -> str:
    """The conf klass of a demo client."""
    return f"{DEMO_CLIENT_MODULE}.{name}"


def demo_client_name(klass: str) -> str | None:
    """The demo client a klass names, or None when it is not one of ours."""
    prefix = DEMO_CLIENT_MODULE + "."
    if isinstance(klass, str) and klass.startswith(prefix) and klass[len(prefix):] in DEMO_CLIENTS:
        return klass[len(prefix):]
    return None
