"""The hold of a ready package: pick-up-by date, SMS text, the reminder (once), expiry, the automatic command,
extending with a reason, the sweep's run and job type, and the API."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from portal.accounts import auth
from portal.db_types import utcnow
from portal.errors import CommandRejected, ValidationFailed
from portal.extensions import db
from portal.jobs import job_types
from portal.otp import service as otp
from portal.otp.models import PickupCode
from portal.outbox.models import OutboxMessage
from portal.packages import commands, hold, hold_sweep, shelf, work_queue
from portal.packages.models import HoldSweepRun, Package, PackageLog
from portal.packages.states import State
from portal.runs import service as runs
from portal.settings import service as settings

BLOCK = "block-the-package-for-action-from-ready-for-customer-pickup"


def make_ready(make, **kwargs) -> Package:
    """A packed click & collect package made ready for pickup."""
    package = make.package(state=State.PACKED, **kwargs)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    return fresh(package)


def fresh(package: Package) -> Package:
    """The package as the database has it now."""
    db.session.expire_all()
    return db.session.get(Package, package.id)


def ends_in(package: Package, delta: timedelta) -> Package:
    """Move the package's hold end to now + delta (and its code's expiry with it)."""
    until = utcnow() + delta
    db.session.execute(update(Package).where(Package.id == package.id).values(hold_until=until))
    db.session.execute(update(PickupCode).where(PickupCode.package_id == package.id).values(expires_at=until))
    db.session.commit()
    return fresh(package)


def reminders(package: Package) -> int:
    """How many reminder SMS rows the package has in the outbox."""
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.package_id == package.id))
    return sum(1 for row in rows if (row.payload or {}).get("purpose") == hold.REMINDER_PURPOSE)


def logs(package: Package, command: str) -> list[PackageLog]:
    """The package's audit rows of one command."""
    return list(db.session.scalars(select(PackageLog).where(PackageLog.package_id == package.id,
                                                           PackageLog.command == command)))


def sweep() -> HoldSweepRun:
    """Run one hold sweep to its end (the test queue runs tasks at once)."""
    run = hold_sweep.start_sweep(db.session)
    assert run.status == run.DONE, run.error
    return run


def token_headers(user) -> dict:
    """Authorization header with a new API token of the user."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


# The hold date and the SMS ------------------------------------------------------------------------------------


def test_ready_for_pickup_sets_the_hold_from_the_store_or_the_default_and_the_code_expires_with_it(app, make, sms):
    default = make_ready(make)
    assert default.hold_until - default.updated_at < timedelta(days=7, seconds=5)
    assert abs(default.hold_until - (utcnow() + timedelta(days=7))) < timedelta(minutes=1)
    assert otp.active_code(db.session, default.id).expires_at == default.hold_until

    store = make.store()
    store.hold_days = 3
    db.session.commit()
    short = make_ready(make, store=store)
    assert abs(short.hold_until - (utcnow() + timedelta(days=3))) < timedelta(minutes=1)
    assert otp.active_code(db.session, short.id).expires_at == short.hold_until


def test_the_ready_sms_says_the_pick_up_by_date(app, make, sms):
    package = make_ready(make)
    body = sms.outbox[-1].body
    date = hold.pick_up_by_text(package)
    assert date and f"Pick it up by {date}." in body
    assert "Your code for order" in body  # the old template still works, with the date added


def test_a_template_with_the_placeholder_puts_the_date_where_it_says(app, make, sms):
    app.config["SMS_TEMPLATE"] = "Code {code} for {order_number}; collect at {store_name} by {pick_up_by}."
    package = make_ready(make)
    body = sms.outbox[-1].body
    assert body.endswith(f"by {hold.pick_up_by_text(package)}.")
    assert "Pick it up by" not in body


def test_with_codes_off_the_notice_says_the_date_too(app, make, sms):
    settings.set_value(db.session, settings.IS_OTP_ENABLED, False, user_id=None)
    package = make_ready(make)
    assert f"Pick it up by {hold.pick_up_by_text(package)}." in sms.outbox[-1].body


def test_the_work_queue_shows_the_hold_end_as_pick_up_by(app, make, sms):
    package = ends_in(make_ready(make), timedelta(days=2))
    [card] = work_queue.queue_page(db.session, "pickup", None).cards
    assert card.due_at == package.hold_until and not card.overdue and not card.hold_expired


# The reminder -------------------------------------------------------------------------------------------------


def test_a_reminder_goes_once_however_often_the_sweep_runs(app, make, sms):
    near = ends_in(make_ready(make), timedelta(hours=5))
    far = ends_in(make_ready(make), timedelta(days=5))
    sms.outbox.clear()
    first = sweep()
    assert (first.checked, first.reminded, first.expired) == (2, 1, 0)
    second = sweep()
    assert second.reminded == 0
    assert reminders(near) == 1 and reminders(far) == 0
    [sent] = sms.outbox
    assert sent.body.startswith(f"Reminder: your order {near.order_number}")
    assert fresh(near).hold_reminder_sent_at is not None


def test_a_crash_after_the_reminder_is_written_but_before_commit_sends_nothing_and_the_next_run_sends_once(
        app, make, sms, monkeypatch):
    package = ends_in(make_ready(make), timedelta(hours=1))
    sms.outbox.clear()

    def crash(*args, **kwargs):
        """The worker dies before the slice commits."""
        raise RuntimeError("worker died")

    monkeypatch.setattr(runs, "save_progress", crash)
    run = hold_sweep.start_sweep(db.session)
    assert run.status == run.FAILED
    assert reminders(package) == 0 and fresh(package).hold_reminder_sent_at is None and not sms.outbox
    monkeypatch.undo()
    sweep()
    sweep()
    assert reminders(package) == 1 and len(sms.outbox) == 1


def test_a_run_taken_over_mid_way_carries_on_from_its_cursor_without_reminding_twice(app, make, sms):
    first = ends_in(make_ready(make), timedelta(hours=1))
    second = ends_in(make_ready(make), timedelta(hours=1))
    run = HoldSweepRun(task_id=runs.new_token(), cursor={"after": 0}, progress={})
    db.session.add(run)
    db.session.commit()
    hold_sweep.step(db.session, run.id, run.task_id, limit=1)  # two slices of one package
    run = db.session.get(HoldSweepRun, run.id, populate_existing=True)
    assert run.status == run.DONE and run.reminded == 2
    # A stale run (its worker died after the first slice committed) requeued from its cursor: nothing twice.
    db.session.execute(update(Package).where(Package.id == second.id).values(hold_reminder_sent_at=None))
    for row in db.session.scalars(select(OutboxMessage).where(OutboxMessage.package_id == second.id)):
        if row.payload.get("purpose") == hold.REMINDER_PURPOSE:
            db.session.delete(row)
    db.session.commit()
    resumed = hold_sweep.start_sweep(db.session, after=first.id)
    assert resumed.reminded == 1
    assert reminders(first) == 1 and reminders(second) == 1


def test_no_reminder_when_the_lead_time_is_zero(app, make, sms):
    settings.set_value(db.session, hold.HOLD_POLICY, {"reminder_hours": 0}, user_id=None)
    package = ends_in(make_ready(make), timedelta(minutes=30))
    assert sweep().reminded == 0 and reminders(package) == 0


# Expiry -------------------------------------------------------------------------------------------------------


def test_an_expired_hold_is_marked_once_its_code_released_and_it_shows_in_problems(app, make, sms):
    package = ends_in(make_ready(make), timedelta(minutes=-1))
    assert work_queue.queue_counts(db.session, None).problems == 1  # at once, before any sweep
    run = sweep()
    assert run.expired == 1 and sweep().expired == 0
    package = fresh(package)
    assert package.hold_expired_at is not None and package.state == State.READY_FOR_CUSTOMER_PICKUP
    assert otp.active_code(db.session, package.id) is None
    assert len(logs(package, hold.EXPIRED_COMMAND)) == 1
    [card] = work_queue.queue_page(db.session, "problems", None).cards
    assert card.package.id == package.id and card.hold_expired and card.overdue
    with pytest.raises(Exception, match="no valid code"):
        commands.run_command(db.session, package.id, slug="self-service-package-delivery",
                             params={"otp": "123456"}, user_id=None, store_ids=None)


def test_the_expiry_command_runs_through_the_command_door_when_set(app, make, sms):
    settings.set_value(db.session, hold.HOLD_POLICY, {"reminder_hours": 24, "expiry_command": BLOCK}, user_id=None)
    package = ends_in(make_ready(make), timedelta(minutes=-1))
    waiting = ends_in(make_ready(make), timedelta(days=3))
    sweep()
    assert fresh(package).state == State.BLOCKED
    [row] = logs(package, BLOCK)
    assert row.user_id is None and row.note == "Hold expired"
    assert fresh(waiting).state == State.READY_FOR_CUSTOMER_PICKUP


def test_without_an_expiry_command_it_is_only_proposed(app, make, sms):
    package = ends_in(make_ready(make), timedelta(minutes=-1))
    sweep()
    assert fresh(package).state == State.READY_FOR_CUSTOMER_PICKUP
    assert hold.proposed_command(db.session, fresh(package)) is None
    settings.set_value(db.session, hold.HOLD_POLICY, {"expiry_command": BLOCK}, user_id=None)
    assert hold.proposed_command(db.session, fresh(package)).slug == BLOCK


@pytest.mark.parametrize("expiry_command", [None, BLOCK])
def test_an_expired_hold_frees_its_shelf_slot_whether_the_command_runs_or_is_only_proposed(app, make, sms,
                                                                                        expiry_command):
    settings.set_value(db.session, hold.HOLD_POLICY, {"reminder_hours": 24, "expiry_command": expiry_command},
                       user_id=None)
    store = make.store()
    slot = shelf.create_slot(db.session, store.id, label="B7", barcode="SHELF-B7", store_ids=None)
    package = make_ready(make, store=store)
    waiting = make_ready(make, store=store)
    shelf.assign(db.session, package.id, slot_id=slot.id, user_id=None, store_ids=None)
    package = ends_in(package, timedelta(minutes=-1))
    sweep()
    assert shelf.current(db.session, package.id) is None
    freed = logs(package, shelf.FREE)
    assert len(freed) == 1 and "B7" in freed[0].note and freed[0].user_id is None
    assert fresh(package).state == (State.BLOCKED if expiry_command else State.READY_FOR_CUSTOMER_PICKUP)
    # The slot takes the next package; a second sweep frees nothing more.
    shelf.assign(db.session, waiting.id, slot_id=slot.id, user_id=None, store_ids=None)
    sweep()
    assert len(logs(package, shelf.FREE)) == 1
    assert shelf.current(db.session, waiting.id).slot_id == slot.id


@pytest.mark.parametrize("value, field", [
    ("soon", "json_value"), ({"reminder_hours": -1}, "reminder_hours"), ({"reminder_hours": True}, "reminder_hours"),
    ({"expiry_command": "self-destruct"}, "expiry_command"),
    ({"expiry_command": "ship-the-package"}, "expiry_command"), ({"colour": 1}, "json_value"),
])
def test_bad_hold_policies_are_refused(app, value, field):
    with pytest.raises(ValidationFailed) as raised:
        settings.set_value(db.session, hold.HOLD_POLICY, value, user_id=None)
    assert raised.value.field == field


# Extending ----------------------------------------------------------------------------------------------------


def test_staff_extend_a_hold_with_a_reason_audited_and_the_code_lasts_as_long(app, make, sms):
    package = ends_in(make_ready(make), timedelta(hours=2))
    sweep()  # reminded
    user = make.user()
    before = package.hold_until
    extended = hold.extend_hold(db.session, package.id, days=3, reason="Customer is abroad", user_id=user.id,
                                store_ids=None)
    assert extended.hold_until == before + timedelta(days=3)
    assert extended.hold_reminder_sent_at is None
    assert otp.active_code(db.session, package.id).expires_at == extended.hold_until
    [row] = logs(package, hold.EXTEND_COMMAND)
    assert row.user_id == user.id and "Customer is abroad" in row.note


def test_an_expired_hold_is_extended_from_now_and_leaves_problems(app, make, sms):
    package = ends_in(make_ready(make), timedelta(days=-2))
    sweep()
    extended = hold.extend_hold(db.session, package.id, days=1, reason="Called", user_id=None, store_ids=None)
    assert abs(extended.hold_until - (utcnow() + timedelta(days=1))) < timedelta(minutes=1)
    assert extended.hold_expired_at is None
    assert work_queue.queue_counts(db.session, None).problems == 0


@pytest.mark.parametrize("days, reason, field", [(0, "x", "days"), (61, "x", "days"), ("many", "x", "days"),
                                                 (2, "  ", "reason")])
def test_extending_needs_days_in_range_and_a_reason(app, make, sms, days, reason, field):
    package = make_ready(make)
    with pytest.raises(ValidationFailed) as raised:
        hold.extend_hold(db.session, package.id, days=days, reason=reason, user_id=None, store_ids=None)
    assert raised.value.field == field
    assert fresh(package).hold_until == package.hold_until


def test_only_a_ready_package_has_a_hold_to_extend(app, make):
    package = make.package(state=State.PACKED)
    with pytest.raises(CommandRejected):
        hold.extend_hold(db.session, package.id, days=1, reason="x", user_id=None, store_ids=None)


# The job type and the API -------------------------------------------------------------------------------------


def test_the_scheduled_job_type_runs_a_sweep(app, make, sms):
    ends_in(make_ready(make), timedelta(minutes=-5))
    text = job_types.JOB_TYPES["hold_sweep"].run(db.session, {})
    assert "1 expired" in text


def test_the_api_shows_hold_until_and_extends_the_hold(client, make, sms):
    store = make.store()
    package = make_ready(make, store=store)
    headers = token_headers(make.user(stores=[store]))
    before = package.hold_until
    shown = client.get(f"/api/v1/oms/packages/{package.id}/", headers=headers)
    assert shown.json["hold_until"].startswith(package.hold_until.strftime("%Y-%m-%dT%H:%M"))
    url = f"/api/v1/oms/packages/{package.id}/hold/extend/"
    refused = client.post(url, headers=headers, json={"days": 2})
    assert refused.status_code == 400
    answer = client.post(url, headers=headers, json={"days": 2, "reason": "Asked by phone"})
    assert answer.status_code == 200, answer.json
    assert fresh(package).hold_until == before + timedelta(days=2)
    assert answer.json["id"] == package.id and answer.json["version"] == package.version
    other = make_ready(make, store=make.store())
    assert client.post(f"/api/v1/oms/packages/{other.id}/hold/extend/", headers=headers,
                       json={"days": 2, "reason": "x"}).status_code == 404


def test_the_hold_policy_goes_through_the_settings_api(client, make):
    headers = token_headers(make.user(role="admin"))
    bad = client.patch("/api/v1/oms/settings/application_settings/", headers=headers,
                       json={"key": "HOLD_POLICY", "json_value": {"reminder_hours": 9999}})
    assert bad.status_code == 400
    good = client.patch("/api/v1/oms/settings/application_settings/", headers=headers,
                        json={"key": "HOLD_POLICY", "json_value": {"reminder_hours": 6, "expiry_command": BLOCK}})
    assert good.status_code in (200, 201), good.json
    assert hold.policy(db.session) == hold.HoldPolicy(reminder_hours=6, expiry_command=BLOCK)


def test_staff_extend_the_hold_on_the_package_page(client, make, auth_actions, sms):
    store = make.store()
    package = make_ready(make, store=store)
    user = make.user(stores=[store])
    auth_actions.login(user.username)
    before = package.hold_until
    page = client.get(f"/packages/{package.id}")
    assert b'id="hold-card"' in page.data and b"Pick up by" in page.data
    answer = client.post(f"/packages/{package.id}/hold/extend", data={"days": "4", "reason": "Sick"},
                         headers={"HX-Request": "true"})
    assert answer.status_code == 200
    assert fresh(package).hold_until == before + timedelta(days=4)
    missing = client.post(f"/packages/{package.id}/hold/extend", data={"days": "4", "reason": ""},
                          headers={"HX-Request": "true"})
    assert missing.status_code == 422 and b"Say why the hold is extended." in missing.data
