"""One background-run core: sync jobs, order import runs and scheduled job runs share the run columns.

Every run table gains progress ({"done", "total"} for the status panel), filled from the counters the
kind already kept; job_runs also gains the claim token, cursor, error, created_at (its old started_at)
and heartbeat_at, and its started_at may be empty (a queued run has not started). Every history row
is kept.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _fill_progress(table: str, done: str, total: str | None) -> None:
    """Set progress on every row of a run table from its own counters."""
    runs = sa.table(table, sa.column("id", sa.Integer()), sa.column(done, sa.Integer()),
                    *([sa.column(total, sa.Integer())] if total else []), sa.column("progress", sa.JSON()))
    bind = op.get_bind()
    for row in bind.execute(sa.select(runs)).mappings().all():
        progress = {"done": row[done] or 0}
        if total:
            progress["total"] = row[total] or 0
        bind.execute(runs.update().where(runs.c.id == row["id"]).values(progress=progress))


def upgrade():
    """Add the shared run columns, fill them for the existing rows, then make them required."""
    for table in ("sync_jobs", "order_import_runs"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("progress", sa.JSON(), nullable=True))
    _fill_progress("sync_jobs", "processed", "total")
    _fill_progress("order_import_runs", "fetched", None)
    for table in ("sync_jobs", "order_import_runs"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("progress", existing_type=sa.JSON(), nullable=False)

    with op.batch_alter_table("job_runs") as batch:
        batch.add_column(sa.Column("task_id", sa.String(length=64), nullable=False, server_default=""))
        batch.add_column(sa.Column("cursor", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("progress", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("error", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.alter_column("started_at", existing_type=sa.DateTime(timezone=True), nullable=True)
    job_runs = sa.table("job_runs", sa.column("status", sa.String()), sa.column("result", sa.Text()),
                        sa.column("cursor", sa.JSON()), sa.column("progress", sa.JSON()),
                        sa.column("error", sa.Text()), sa.column("created_at", sa.DateTime(timezone=True)),
                        sa.column("started_at", sa.DateTime(timezone=True)))
    op.execute(job_runs.update().values(cursor={}, progress={}, created_at=job_runs.c.started_at))
    op.execute(job_runs.update().where(job_runs.c.status == "failed").values(error=job_runs.c.result))
    with op.batch_alter_table("job_runs") as batch:
        batch.alter_column("task_id", existing_type=sa.String(length=64), server_default=None)
        batch.alter_column("error", existing_type=sa.Text(), server_default=None)
        batch.alter_column("cursor", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("progress", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("created_at", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade():
    """Drop the added columns (job_runs.started_at is required again: a run never started gets its creation time)."""
    job_runs = sa.table("job_runs", sa.column("created_at", sa.DateTime(timezone=True)),
                        sa.column("started_at", sa.DateTime(timezone=True)))
    op.execute(job_runs.update().where(job_runs.c.started_at.is_(None)).values(started_at=job_runs.c.created_at))
    with op.batch_alter_table("job_runs") as batch:
        batch.alter_column("started_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        for column in ("heartbeat_at", "created_at", "error", "progress", "cursor", "task_id"):
            batch.drop_column(column)
    for table in ("order_import_runs", "sync_jobs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("progress")
