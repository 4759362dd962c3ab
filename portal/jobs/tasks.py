"""Every background task, imported here so that a worker started on `portal.jobs.tasks.huey` knows them all."""
from portal.jobs.queue import huey  # noqa: F401
