"""The worker entry point: every background task, imported here so that a worker started on
`portal.worker.huey` knows them all, the factory of the worker's app, and the outbox's channels.

Background runs go through one task, portal.runs.service.run_step, which finds the step of a run's
kind in a registry: each kind's module registers itself when imported, so it must be imported here."""
from portal import create_app
from portal.jobs import scheduler  # noqa: F401  (kind "scheduled_job" and the every-minute tick)
from portal.orders import service as order_service  # noqa: F401  (kind "order_import", setup step 8)
from portal.outbox import tasks as outbox_tasks  # noqa: F401  (the outbox worker: SMS and webhooks)
from portal.packages import (
    hold_sweep,  # noqa: F401  (kind "hold_sweep": reminders and expiry of held packages)
    shipment_tracking,  # noqa: F401  (kind "shipment_tracking"; shipments' tasks and sweep)
)
from portal.queue import huey, set_app_factory  # noqa: F401  (huey: what huey_consumer is started on)
from portal.runs import service as runs  # noqa: F401  (the one task for every kind of background run)
from portal.sync import service as sync_service  # noqa: F401  (kind "sync": addresses, stores, channels)
from portal.wiring import wire

set_app_factory(create_app)
wire()  # the outbox's channels, before the first task runs (create_app wires them again, harmlessly)
