"""The shipping companies a cargo company can integrate with, the credentials each needs, and the demo clients.

A real integration's `conf` holds the fields of its shipping company; a demo client's `conf` is
{"klass": "oms.shipments.clients.demo_client.<Name>"} (shared/seeds/oms-basic-setup.txt, step 14).
"""
from __future__ import annotations

from dataclasses import dataclass

from portal.i18n import N_

TEXT = "text"
SECRET = "secret"
URL = "url"

DEMO_CLIENT_MODULE = "oms.shipments.clients.demo_client"


@dataclass(frozen=True)
class ConfField:
    """One credential field: its key in conf, label, kind (text, secret or url) and whether it is required.

    The label and help are plain English (marked with N_): screens translate them with _() where they show them.
    """

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
    """A shipping company and the conf fields its client needs (its name is a brand, never translated)."""

    slug: str
    name: str
    fields: tuple[ConfField, ...]

    def field(self, name: str) -> ConfField | None:
        """The field with this name, or None."""
        return next((f for f in self.fields if f.name == name), None)


_USERNAME = ConfField("username", N_("Username"))
_PASSWORD = ConfField("password", N_("Password"), SECRET)

SHIPPING_COMPANIES: dict[str, ShippingCompany] = {company.slug: company for company in (
    ShippingCompany("yurtici", "Yurtiçi Kargo", (
        _USERNAME, _PASSWORD,
        ConfField("company_description", N_("Company description"), required=False,
                  help=N_("Shown on Yurtiçi's waybills; optional.")),
    )),
    ShippingCompany("aras", "Aras Kargo", (
        _USERNAME, _PASSWORD,
        ConfField("customer_code", N_("Customer code"), help=N_("Aras's code for the brand's account.")),
    )),
    ShippingCompany("mng", "MNG Kargo", (
        _USERNAME, _PASSWORD,
        ConfField("name", N_("Sender name")),
        ConfField("address", N_("Sender address")),
        ConfField("query_shipment_url", N_("Query shipment URL"), URL),
        ConfField("create_shipment_url", N_("Create shipment URL"), URL),
    )),
    ShippingCompany("ups", "UPS", (
        ConfField("client_id", N_("Client ID")),
        ConfField("client_secret", N_("Client secret"), SECRET),
        ConfField("account_number", N_("Shipper account number")),
        ConfField("api_url", N_("API URL"), URL, required=False, help=N_("Leave empty for UPS's production API.")),
    )),
    ShippingCompany("surat", "Sürat Kargo", (
        _USERNAME, _PASSWORD,
        ConfField("customer_code", N_("Customer code")),
    )),
    ShippingCompany("ptt", "PTT Kargo", (
        _USERNAME, _PASSWORD,
        ConfField("customer_id", N_("Customer ID")),
        ConfField("api_url", N_("API URL"), URL, required=False),
    )),
    ShippingCompany("hepsijet", "HepsiJET", (
        _USERNAME, _PASSWORD,
        ConfField("company_code", N_("Company code")),
        ConfField("api_key", N_("API key"), SECRET),
        ConfField("api_url", N_("API URL"), URL),
    )),
)}

# Demo clients by class name: what each does (plain English, translated with _() where shown).
# They stand in for a real cargo integration.
DEMO_CLIENTS: dict[str, str] = {
    "DemoShippingClient": N_("Creates shipments at once, with made-up tracking numbers."),
    "DemoDelayedShippingClient": N_("Creates shipments and marks them delivered after a day."),
    "DemoFailingShippingClient": N_("Refuses every shipment, to rehearse the failure path."),
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
