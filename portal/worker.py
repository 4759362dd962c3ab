"""The worker entry point: every background task, imported here so that a worker started on
`portal.worker.huey` knows them all, the factory of the worker's app, and the outbox's channels."""
from portal import create_app
from portal.jobs import scheduler  # noqa: F401  (scheduled jobs: run-now and the every-minute tick)
from portal.orders import tasks as order_tasks  # noqa: F401  (the order import, setup step 8)
from portal.outbox import tasks as outbox_tasks  # noqa: F401  (the outbox worker: SMS and webhooks)
from portal.queue import huey, set_app_factory  # noqa: F401  (huey: what huey_consumer is started on)
from portal.sync import tasks as sync_tasks  # noqa: F401  (Omnitron syncs: addresses, stores, channels)
from portal.wiring import wire

set_app_factory(create_app)
wire()  # the outbox's channels, before the first task runs (create_app wires them again, harmlessly)
