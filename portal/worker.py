"""Every background task, imported here so that a worker started on `portal.worker.huey` knows them all."""
from portal.queue import huey  # noqa: F401
from portal.jobs import scheduler  # noqa: F401,E402  (scheduled jobs: run-now and the every-minute tick)
from portal.sync import tasks as sync_tasks  # noqa: F401,E402  (Omnitron syncs: addresses, stores, channels)
from portal.outbox import tasks as outbox_tasks  # noqa: F401,E402  (the outbox worker: SMS and webhooks)
from portal.orders import tasks as order_tasks  # noqa: F401,E402  (the order import, setup step 8)
from portal.wiring import wire  # noqa: E402

wire()  # the outbox's channels, before the first task runs
