"""The setup wizard: its 15 steps, their recorded state, and the rules that settle them."""
# The settings rules register themselves with settings.after_save() on import; every process that has the
# models (portal.models imports portal.setup.models) has them.
from portal.setup import rules  # noqa: F401,E402
