"""Setup wizard routes (routes_settings)."""
from portal.blueprints.setup import bp  # noqa: F401
