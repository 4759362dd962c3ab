"""Start-up wiring: plug the channels into the outbox and the secret-keeping tables into key rotation,
so that the outbox and the settings depend on none of them (they depend on the outbox and the settings).

Called by create_app() and by the worker entry point (portal.worker). Registering again is harmless:
each call puts the same functions in the same places.
"""
from __future__ import annotations

from portal.cargo.models import CargoCompany
from portal.integrations.models import StockIntegration
from portal.outbox import service as outbox
from portal.outbox import tasks as outbox_tasks
from portal.outbox.models import OutboxMessage
from portal.settings import rotation
from portal.settings import service as settings
from portal.sms import sender as sms_sender
from portal.sync import service as sync
from portal.webhooks import catalogue as webhook_catalogue
from portal.webhooks import delivery as webhook_delivery
from portal.webhooks import events as webhook_events
from portal.webhooks.models import InspectedRequest, WebhookSubscription


def wire() -> None:
    """Register the outbox's channels and dispatcher, and the encrypted columns key rotation re-encrypts."""
    wire_outbox()
    wire_rotation()
    wire_settings()


def wire_outbox() -> None:
    """The SMS and webhook senders, who receives an event (webhook subscriptions), and the job-queue dispatcher."""
    outbox.register_sender(outbox.SMS, sms_sender.send_sms)
    outbox.register_sender(outbox.WEBHOOK, webhook_delivery.deliver_webhook)
    outbox.register_batch_sender(outbox.WEBHOOK, webhook_delivery.deliver_webhooks)
    outbox.register_recipients(webhook_events.recipients)
    outbox.register_dispatcher(outbox_tasks.queue_delivery)


def wire_rotation() -> None:
    """Every encrypted column outside the settings, in the order `flask rotate-encryption-key` reports them."""
    rotation.register_encrypted_column("stock_integrations", StockIntegration.password_encrypted)
    rotation.register_encrypted_column("cargo_companies", CargoCompany.conf_encrypted)
    rotation.register_encrypted_column("webhook_subscriptions", WebhookSubscription.secret_encrypted)
    rotation.register_encrypted_column("webhook_inspected_requests", InspectedRequest.content_encrypted)
    rotation.register_encrypted_column("outbox", OutboxMessage.body_encrypted)


def wire_settings() -> None:
    """Settings checks that need other packages: the webhook event catalogue, the channels copied from Omnitron."""
    settings.register_validator(settings.WANTED_EVENTS, webhook_catalogue.validate_wanted_events)
    settings.register_check(settings.ORDER_FILTERING, sync.check_filter_channels)
