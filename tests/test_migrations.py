"""The migrations build exactly the models' schema and install the vendor's flow."""
from __future__ import annotations

from flask_migrate import downgrade, upgrade
from sqlalchemy import func, inspect, select

from portal import create_app
from portal.extensions import db
from portal.packages.flow import DENIAL_REASONS_V1, VENDOR_FLOW_V1, transition_rows
from portal.packages.models import DenialReason, Transition
from portal.settings.models import ApplicationSetting


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
