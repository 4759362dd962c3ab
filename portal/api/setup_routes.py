"""API routes of the setup wizard (sync, stock integration, cargo companies)."""
from portal.api import bp  # noqa: F401

# Paths these routes add to the OpenAPI document, merged by portal/api/openapi.py.
OPENAPI_PATHS: dict = {}
