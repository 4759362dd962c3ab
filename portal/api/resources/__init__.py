"""The API's resources, one module each: its models, its operations and nothing else.

Importing this package registers every operation on the API blueprint (portal/api/operations.py).

To add a resource, copy cargo.py (the smallest): an Answer model built from the domain object, a Body
model per request body (a Query model per query string), one `@operation(...)` function per route
calling one domain function, and its name in the import below. Admins only unless `access=` says
otherwise; the OpenAPI document, the 400s naming fields and tests/test_api_openapi.py's check that
every route is documented follow by themselves.
"""
from portal.api.resources import (  # noqa: F401
    cargo,
    customer_link,
    delegate,
    document,
    dry_run,
    hold,
    jobs,
    order_import,
    override,
    packages,
    partial_pickup,
    pickup_settings,
    scenarios,
    settings,
    shelf,
    shipments,
    stock_integration,
    sync,
    transitions,
    users,
    webhooks,
)
