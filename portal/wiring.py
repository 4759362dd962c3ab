"""Start-up wiring: plug the channels into the outbox, so that the outbox depends on none of them.

Called by create_app() and by the worker entry point (portal.worker). Registering again is harmless:
each call puts the same functions in the same places.
"""
from __future__ import annotations

from portal.outbox import service as outbox
from portal.outbox import tasks as outbox_tasks
from portal.sms import sender as sms_sender
from portal.webhooks import delivery as webhook_delivery
from portal.webhooks import events as webhook_events


def wire() -> None:
    """Register the SMS and webhook senders, the webhook recipients of events, and the job-queue dispatcher."""
    outbox.register_sender(outbox.SMS, sms_sender.send_sms)
    outbox.register_sender(outbox.WEBHOOK, webhook_delivery.deliver_webhook)
    outbox.register_recipients(webhook_events.recipients)
    outbox.register_dispatcher(outbox_tasks.queue_delivery)
