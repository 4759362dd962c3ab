"""Setup wizard routes (routes_admin)."""
from portal.blueprints.setup import bp  # noqa: F401
