"""Queue task for the Omnitron syncs (setup steps 4 to 6); imported by portal.worker for the workers."""
from __future__ import annotations

from portal.extensions import db
from portal.queue import app_context, huey


@huey.task()
def run_sync_job(job_id: int, token: str) -> None:
    """Queue task: run one recorded sync job under its claim token (failures end up on the job, not here)."""
    from portal.sync.service import sync_kind  # the service imports this module to queue the task

    with app_context():
        sync_kind(db.session, job_id, token=token)
