"""The migrations build exactly the models' schema and install the vendor's flow."""
from __future__ import annotations

from datetime import UTC, datetime

from alembic.script import ScriptDirectory
from flask import current_app
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, inspect, select, text

from portal import create_app
from portal.accounts.models import LoginThrottle
from portal.extensions import db
from portal.jobs.models import JobRun
from portal.orders.models import OrderImportRun
from portal.packages.flow import DENIAL_REASONS_V1, VENDOR_FLOW_V1, transition_rows
from portal.packages.models import DenialReason, Transition
from portal.settings.models import ApplicationSetting
from portal.sync.models import SyncJob


def test_the_models_and_the_migrations_agree(runner):
    result = runner.invoke(args=["db", "check"])

    # alembic prints its verdict to the process's stdout; a drift makes the command exit 1.
    assert result.exit_code == 0, result.output


def test_the_migrated_database_holds_the_vendor_flow(app):
    rows = {t.slug: t for t in db.session.scalars(select(Transition))}

    for expected in transition_rows():
        transition = rows[expected["slug"]]
        assert (transition.name, transition.command_code, transition.source_state, transition.destination_state,
                sorted(transition.visibility), transition.is_active) == (
            expected["name"], expected["command_code"], expected["source_state"], expected["destination_state"],
            sorted(expected["visibility"]), True)
    assert rows["ready-for-customer-pickup"].name == "Ready For Customer Pickup"
    assert rows["self-service-package-delivery"].command_code == "SELF_SERVICE_PACKAGE_DELIVERY_COMMAND"
    assert rows["unblock-the-package-for-action"].destination_state is None
    assert len({t.slug for t in rows.values()}) == len(rows) >= len(VENDOR_FLOW_V1)

    reasons = {r.remote_id: r for r in db.session.scalars(select(DenialReason))}
    assert set(reasons) >= {remote for _t, remote, _p, _a in DENIAL_REASONS_V1}
    assert reasons["LEGACY"].is_active is False
    otp = db.session.scalar(select(ApplicationSetting).where(ApplicationSetting.key == "IS_OTP_ENABLED"))
    assert otp.json_value is True


def test_the_migrations_go_down_and_up_again_cleanly(tmp_path):
    app = create_app({"ENV_NAME": "testing", "TESTING": True, "SECRET_KEY": "test-secret-key",
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/roundtrip.sqlite"})
    with app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {"packages", "transitions", "pickup_codes", "outbox_messages"} <= tables
        transitions = db.session.scalar(select(func.count()).select_from(Transition))
        assert transitions >= len(VENDOR_FLOW_V1)
        db.session.rollback()

        downgrade(revision="0001")
        assert app.test_cli_runner().invoke(args=["db", "check"]).exit_code == 1  # drift is noticed

        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}

        upgrade()
        assert set(inspect(db.engine).get_table_names()) == tables
        assert db.session.scalar(select(func.count()).select_from(Transition)) == transitions  # no duplicates
        result = app.test_cli_runner().invoke(args=["db", "check"])
        assert result.exit_code == 0, result.output
        db.session.remove()
        db.engine.dispose()


def test_migration_0007_keeps_the_history_of_every_kind_of_run(app):
    """Rows written by 0006's schema come through the run core's migration with their progress filled."""
    db.session.remove()
    downgrade(revision="0006")
    try:
        moment = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO sync_jobs (id, kind, status, total, processed, created, updated, unchanged, failed, "
                "removed, cursor, error, task_id, created_at) VALUES (1, 'channels', 'done', 8, 8, 8, 0, 0, 0, 0, "
                "'{\"resource\": \"channel\", \"page\": 1}', '', 'old-token', :at)"), {"at": moment})
            conn.execute(text(
                "INSERT INTO order_import_runs (id, status, \"trigger\", \"full\", task_id, filter_key, cursor, "
                "fetched, created, already_imported, skipped, failed, skip_reasons, problems, error, created_at) "
                "VALUES (1, 'failed', 'manual', :no, 't', 'k', '{}', 5, 3, 2, 0, 0, '{}', '[]', 'Omnitron down.', "
                ":at)"), {"at": moment, "no": False})
            conn.execute(text(
                "INSERT INTO scheduled_jobs (id, name, job_type, schedule, parameters, enabled, created_at, "
                "updated_at) VALUES (1, 'Nightly', 'outbox_retry', '0 3 * * *', '{}', :yes, :at, :at)"),
                {"at": moment, "yes": True})
            conn.execute(text(
                "INSERT INTO job_runs (id, job_id, \"trigger\", status, result, started_at, finished_at) VALUES "
                "(1, 1, 'schedule', 'succeeded', 'Sent 2.', :at, :at), (2, 1, 'manual', 'failed', 'Failed: boom', "
                ":at, :at)"), {"at": moment})
        db.engine.dispose()
        upgrade()

        sync_job = db.session.get(SyncJob, 1)
        assert (sync_job.status, sync_job.processed, sync_job.task_id) == ("done", 8, "old-token")
        assert sync_job.progress == {"done": 8, "total": 8} and sync_job.cursor == {"resource": "channel", "page": 1}
        import_run = db.session.get(OrderImportRun, 1)
        assert (import_run.status, import_run.error, import_run.progress) == ("failed", "Omnitron down.", {"done": 5})
        succeeded, failed = db.session.get(JobRun, 1), db.session.get(JobRun, 2)
        assert (succeeded.status, succeeded.result, succeeded.created_at, succeeded.started_at) == (
            "succeeded", "Sent 2.", moment, moment)
        assert (succeeded.error, succeeded.cursor, succeeded.progress, succeeded.task_id) == ("", {}, {}, "")
        assert (failed.status, failed.error) == ("failed", "Failed: boom")
    finally:
        db.session.remove()
        upgrade()


def test_migration_0023_starts_every_throttle_with_no_check_in_flight(app):
    """Throttle rows written before the in-flight count come through with no slot taken."""
    parent = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config()) \
        .get_revision("0023").down_revision
    db.session.remove()
    downgrade(revision=parent)
    try:
        moment = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO login_throttles (key, failures, locked_until, updated_at) "
                              "VALUES ('k', 3, NULL, :at)"), {"at": moment})
        db.engine.dispose()
        upgrade()

        row = db.session.get(LoginThrottle, "k")
        assert (row.failures, row.in_flight, row.in_flight_at) == (3, 0, None)
    finally:
        db.session.remove()
        upgrade()
