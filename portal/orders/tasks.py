"""Queue task for the order import; imported by portal.worker for the workers."""
from __future__ import annotations

from portal.extensions import db
from portal.queue import app_context, huey


@huey.task()
def run_import_task(run_id: int, token: str) -> None:
    """Queue task: carry out one recorded import run under its claim token (failures end up on the run)."""
    from portal.orders.service import run_import  # the service imports this module to queue the task

    with app_context():
        run_import(db.session, run_id, token=token)
