"""Webhook subscriptions, signed deliveries, and the event coverage of setup step 12."""
# Step 12 follows WANTED_EVENTS through settings.after_save(), registered when coverage is imported; every
# process that has the models (portal.models imports portal.webhooks.models) has it.
from portal.webhooks import coverage  # noqa: F401,E402
