"""The API's resources, one module each: its models, its operations and nothing else.

Importing this package registers every operation on the API blueprint (portal/api/operations.py).
"""
from portal.api.resources import (  # noqa: F401
    cargo,
    document,
    jobs,
    order_import,
    packages,
    scenarios,
    settings,
    stock_integration,
    sync,
    transitions,
    users,
    webhooks,
)
