"""Setup wizard routes (routes_sync)."""
from portal.blueprints.setup import bp  # noqa: F401
