"""Every background task, imported here so that a worker started on `portal.worker.huey` knows them all.

Background runs go through one task, portal.runs.service.run_step, which finds the step of a run's
kind in a registry: each kind's module registers itself when imported, so it must be imported here.
"""
from portal.queue import huey  # noqa: F401
from portal.runs import service as runs  # noqa: F401,E402  (the one task for every kind of background run)
from portal.jobs import scheduler  # noqa: F401,E402  (kind "scheduled_job" and the every-minute tick)
from portal.sync import service as sync_service  # noqa: F401,E402  (kind "sync": addresses, stores, channels)
from portal.orders import service as order_service  # noqa: F401,E402  (kind "order_import", setup step 8)
from portal.webhooks import tasks as webhook_tasks  # noqa: F401,E402  (the outbox worker: SMS and webhooks)
