"""Cargo clients, chosen per cargo company (setup step 14): its demo client talks to the demo cargo service.

A demo client's conf names one of DEMO_CLIENTS; each uses the demo cargo service (CARGO_SERVICE_URL, by
default the bundled sandbox at OMNITRON_URL) with its own profile. A real shipping company's integration
(Yurtiçi, Aras, ...) has no client yet: asking for one raises CargoError, which the shipment shows plainly.
"""
from __future__ import annotations

from flask_babel import gettext as _

from portal import outbound
from portal.cargo.clients.base import (
    ATTEMPTED_DELIVERY,
    CREATED,
    DELIVERED,
    DELIVERY_FAILED,
    FINAL_STATES,
    IN_TRANSIT,
    TRACKING_STATES,
    Address,
    CargoClient,
    CargoError,
    CreatedShipment,
    ShipmentRequest,
    TrackingState,
)
from portal.cargo.clients.sandbox import PROFILES, SandboxCargoClient
from portal.cargo.companies import SHIPPING_COMPANIES, demo_client_name
from portal.cargo.models import CargoCompany

__all__ = ["ATTEMPTED_DELIVERY", "CREATED", "DELIVERED", "DELIVERY_FAILED", "FINAL_STATES", "IN_TRANSIT",
           "TRACKING_STATES", "Address", "CargoClient", "CargoError", "CreatedShipment", "SandboxCargoClient",
           "ShipmentRequest", "TrackingState", "client_for"]

_SESSIONS_KEY = "cargo_http_session"


def client_for(app, company: CargoCompany, conf: dict) -> CargoClient:
    """The client of a cargo company, from its decrypted conf. Raises CargoError when it has none."""
    if company.is_demo_client:
        name = demo_client_name(conf.get("klass", ""))
        if name is None or name not in PROFILES:
            raise CargoError(_("The demo client of %(company)s is not one we know; choose one in setup step 14.",
                               company=company.name), retryable=False)
        session = app.extensions.get(_SESSIONS_KEY)
        if session is None:
            # keep-alive across shipments; every connection passes the SSRF guard (CARGO_SERVICE_URL included)
            session = app.extensions[_SESSIONS_KEY] = outbound.guarded_session(outbound.policy_from_config(app.config))
        return SandboxCargoClient(app.config.get("CARGO_SERVICE_URL") or app.config.get("OMNITRON_URL", ""),
                                  PROFILES[name], timeout=app.config.get("CARGO_TIMEOUT_SECONDS", 10),
                                  session=session)
    shipping = SHIPPING_COMPANIES.get(company.shipping_company)
    raise CargoError(_("The portal has no %(shipping)s integration yet: use a demo client for %(company)s, or "
                       "ship with the cargo company's own tools.",
                       shipping=shipping.name if shipping else company.shipping_company, company=company.name),
                     retryable=False)
