"""Setup wizard routes (routes_catalog)."""
from portal.blueprints.setup import bp  # noqa: F401
