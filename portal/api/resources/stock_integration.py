"""The product stock integration (setup step 10, admins only): the engines, defining one, testing its connection."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from portal.api.auth import caller
from portal.api.operations import operation
from portal.api.schemas import Answer, Body
from portal.extensions import db
from portal.integrations import service as integrations


class StockEngine(Answer):
    """A stock engine an integration can use, and the credentials it needs."""

    type: str = Field(examples=["basic_auth_rest"])
    name: str
    requires_credentials: bool
    credentials: list[Literal["username", "password"]] = Field(
        description="The credentials the engine needs; a token goes in `password`.")


class StockIntegration(Answer):
    """A stock integration as the API shows it: the password masked, never in full."""

    id: int
    url: str = Field(json_schema_extra={"format": "uri"})
    stock_engine_type: str
    username: str
    password: str | None = Field(description="Masked (`********` plus, for long passwords, the last two "
                                             "characters); sending it back keeps the stored password.")
    is_active: bool
    last_test_at: str | None = Field(json_schema_extra={"format": "date-time"})
    last_test_ok: bool | None
    last_test_message: str

    @classmethod
    def of(cls, integration) -> StockIntegration:
        """An integration row as the API shows it."""
        return cls(id=integration.id, url=integration.url, stock_engine_type=integration.stock_engine_type,
                   username=integration.username or "", password=integrations.password_mask(integration) or None,
                   is_active=integration.is_active,
                   last_test_at=integration.last_test_at.isoformat() if integration.last_test_at else None,
                   last_test_ok=integration.last_test_ok, last_test_message=integration.last_test_message or "")


class ConnectionTest(Answer):
    """The outcome of calling the stock service; a failed call is ok: false, not an error."""

    ok: bool
    message: str
    http_status: int | None
    integration: StockIntegration


class IntegrationRequest(Body):
    """The integration to define; the same URL updates the one already there."""

    url: str = Field(max_length=2000, json_schema_extra={"format": "uri"}, description="http:// or https://")
    stock_engine_type: str = Field(max_length=64, description="From available-stock-engines.")
    username: str | None = Field(None, max_length=500)
    password: str | None = Field(None, max_length=500, description="Left out (or the mask shown): keeps the "
                                                                   "stored one.")
    is_active: bool = True


@operation("GET", "/oms/setup/product-stock-integration/available-stock-engines/", answer=list[StockEngine],
           tag="stock integration", summary="The stock engines (admins only).")
def available_stock_engines():
    """The stock engines an integration can use, and whether each needs credentials."""
    return [StockEngine.model_validate(engine) for engine in integrations.available_stock_engines()]


@operation("POST", "/oms/setup/product-stock-integration/execute/", body=IntegrationRequest,
           answer=StockIntegration, status=201, also=(200,), tag="stock integration",
           summary="Define the product stock integration (admins only).",
           description="Creates the integration (201), or updates the one with the same URL (200). username and "
                       "password are required only for engines that need them. The password is encrypted at rest "
                       "and never returned.",
           example={"url": "https://stock.example.com/api", "stock_engine_type": "basic_auth_rest",
                    "username": "oms", "password": "s3cret-pass"})
def execute_stock_integration(body: IntegrationRequest):
    """Define the stock integration; the same URL updates it."""
    integration, created = integrations.save_integration(
        db.session, url=body.url, stock_engine_type=body.stock_engine_type, username=body.username,
        password=body.password, is_active=body.is_active, upsert_by_url=True, user_id=caller().user_id)
    return StockIntegration.of(integration), 201 if created else 200


@operation("POST", "/oms/setup/product-stock-integration/<int:integration_id>/test-connection/",
           answer=ConnectionTest, errors=("404",), tag="stock integration",
           summary="Call the integration's stock service now and record the outcome (admins only).")
def test_stock_integration_connection(integration_id: int):
    """Call the integration's stock service now; the outcome is recorded and returned."""
    outcome = integrations.run_connection_test(db.session, integration_id, user_id=caller().user_id)
    return ConnectionTest(ok=outcome.result.ok, message=str(outcome.result.message),
                          http_status=outcome.result.status, integration=StockIntegration.of(outcome.integration))
