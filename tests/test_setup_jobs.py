"""Setup step 15: scheduled jobs with cron schedules, "Run now" on the job queue, the periodic runner, last runs."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from portal.db_types import utcnow
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.idempotency.models import IdempotencyRecord
from portal.jobs import job_types, scheduler
from portal.jobs.models import JobRun, ScheduledJob
from portal.otp.models import PickupCode
from portal.outbox import service as outbox
from portal.outbox.models import OutboxMessage
from portal.packages.states import State
from portal.setup import service as wizard
from portal.setup.models import SetupStep

HX = {"HX-Request": "true"}
UTC = UTC


@pytest.fixture
def admin(make, auth_actions):
    """A logged-in admin."""
    user = make.user("ayse", "admin")
    assert auth_actions.login("ayse").status_code == 302
    return user


@pytest.fixture
def queue():
    """The job queue in immediate mode: a queued task runs at once, in this process."""
    from portal.queue import huey

    before = huey.immediate
    huey.immediate = True
    yield huey
    huey.immediate = before


def make_job(name="Release codes", job_type="release_expired_pickup_codes", schedule="0 3 * * *", parameters=None,
             enabled=True, next_run_at=None) -> ScheduledJob:
    """A saved job; next_run_at as given (the schedule's own when None)."""
    job = scheduler.create_job(db.session, scheduler.JobInput(name, job_type, schedule, parameters or {}, enabled))
    if next_run_at is not None:
        job.next_run_at = next_run_at
        db.session.commit()
    return job


def runs() -> list[JobRun]:
    """Every run, oldest first."""
    db.session.expire_all()
    return list(db.session.scalars(select(JobRun).order_by(JobRun.id)))


def at(text: str) -> datetime:
    """An aware UTC datetime from "2026-03-02 09:30"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- cron ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("expression, after, expected", [
    ("* * * * *", "2026-03-02 09:30:15", "2026-03-02 09:31"),
    ("0 3 * * *", "2026-03-02 09:30", "2026-03-03 03:00"),
    ("0 3 * * *", "2026-03-02 02:59:59", "2026-03-02 03:00"),
    ("*/15 * * * *", "2026-03-02 09:30", "2026-03-02 09:45"),
    ("5,35 8-10 * * *", "2026-03-02 10:36", "2026-03-03 08:05"),
    ("10-50/20 * * * *", "2026-03-02 09:31", "2026-03-02 09:50"),
    ("0 9 * * mon-fri", "2026-03-06 10:00", "2026-03-09 09:00"),  # Friday after nine -> Monday
    ("0 9 * * 0", "2026-03-02 10:00", "2026-03-08 09:00"),  # Sunday as 0
    ("0 9 * * 7", "2026-03-02 10:00", "2026-03-08 09:00"),  # ... and as 7
    ("0 0 1 jan,jul *", "2026-03-02 10:00", "2026-07-01 00:00"),
    ("0 0 13 * 5", "2026-03-02 10:00", "2026-03-06 00:00"),  # day 13 OR a Friday, as cron reads it
    ("0 12 29 2 *", "2026-03-02 10:00", "2028-02-29 12:00"),
    ("59 23 31 12 *", "2026-12-31 23:59", "2027-12-31 23:59"),
])
def test_next_run_in_utc(expression, after, expected):
    assert scheduler.next_run(expression, at(after), "UTC") == at(expected)


def test_schedules_are_read_in_the_display_time_zone():
    # 03:00 in Istanbul (UTC+3) is midnight UTC.
    assert scheduler.next_run("0 3 * * *", at("2026-03-02 01:00"), "Europe/Istanbul") == at("2026-03-03 00:00")
    # A wall time that a DST change skips still runs once, just after the change.
    assert scheduler.next_run("30 2 29 3 *", at("2026-03-01 00:00"), "Europe/Berlin") == at("2026-03-29 01:30")


def test_a_date_that_never_comes_has_no_next_run():
    assert scheduler.next_run("0 0 30 2 *", at("2026-03-02 10:00"), "UTC") is None


@pytest.mark.parametrize("expression, message", [
    ("", "5 fields"),
    ("* * * *", "5 fields"),
    ("* * * * * *", "5 fields"),
    ("60 * * * *", "Minute must be from 0 to 59"),
    ("* 24 * * *", "Hour must be from 0 to 23"),
    ("* * 0 * *", "Day of month must be from 1 to 31"),
    ("* * * 13 *", "Month must be from 1 to 12"),
    ("* * * * 8", "Day of week must be from 0 to 7"),
    ("*/0 * * * *", "step"),
    ("*/x * * * *", "step"),
    ("30-10 * * * *", "runs backwards"),
    ("1,,2 * * * *", "empty item"),
    ("every day", "5 fields"),
    ("a * * * *", "not a number"),
    ("* * * smarch *", "not a number"),
])
def test_bad_schedules_are_refused(expression, message):
    with pytest.raises(ValidationFailed, match=message) as caught:
        scheduler.parse_cron(expression)
    assert caught.value.field == "schedule"


def test_parse_cron_normalises_spaces_and_expands_fields():
    cron = scheduler.parse_cron("  0,30   9-10 * * sat,SUN ")
    assert cron.expression == "0,30 9-10 * * sat,SUN"
    assert cron.minutes == (0, 30) and cron.hours == (9, 10) and cron.weekdays == {0, 6}


# --- jobs and their parameters -------------------------------------------------------------------------------

def test_parameters_are_checked_against_the_job_types_spec():
    assert job_types.validate_parameters("purge_idempotency_records", "") == {"days": 7}
    assert job_types.validate_parameters("purge_idempotency_records", '{"days": 30}') == {"days": 30}
    for raw, message in (('{"days": 0}', "from 1 to 365"), ('{"days": "7"}', "whole number"),
                         ('{"days": true}', "whole number"), ('{"weeks": 1}', "no parameter 'weeks'"),
                         ("[7]", "JSON object"), ('{"days": ', "not valid JSON")):
        with pytest.raises(ValidationFailed, match=message):
            job_types.validate_parameters("purge_idempotency_records", raw)
    with pytest.raises(ValidationFailed, match="no parameter 'limit'"):
        job_types.validate_parameters("release_expired_pickup_codes", {"limit": 5})


def test_a_saved_job_knows_its_next_run(app):
    job = make_job(schedule="*/5 * * * *")
    assert job.next_run_at is not None
    assert utcnow() < job.next_run_at <= utcnow() + timedelta(minutes=5)
    assert make_job(name="Off", enabled=False).next_run_at is None


@pytest.mark.parametrize("data, field", [
    (scheduler.JobInput("", "outbox_retry", "* * * * *", {}, True), "name"),
    (scheduler.JobInput("Nightly", "make_coffee", "* * * * *", {}, True), "job_type"),
    (scheduler.JobInput("Nightly", "outbox_retry", "0 0 30 2 *", {}, True), "schedule"),
    (scheduler.JobInput("Nightly", "outbox_retry", "* * * * *", '{"limit": 5000}', True), "parameters"),
    (scheduler.JobInput("Release codes", "outbox_retry", "* * * * *", {}, True), "name"),
])
def test_bad_jobs_are_refused(app, data, field):
    make_job()
    with pytest.raises(ValidationFailed) as caught:
        scheduler.create_job(db.session, data)
    assert caught.value.field == field
    assert db.session.scalar(select(func.count()).select_from(ScheduledJob)) == 1


# --- what the job types do -----------------------------------------------------------------------------------

def test_release_expired_pickup_codes_marks_only_expired_active_codes(app, make, queue):
    package = make.package(state=State.READY_FOR_CUSTOMER_PICKUP)
    now = utcnow()
    expired = PickupCode(package_id=package.id, code_hash="a" * 64, expires_at=now - timedelta(hours=1))
    fresh = PickupCode(package_id=package.id, code_hash="b" * 64, expires_at=now + timedelta(days=1))
    used = PickupCode(package_id=package.id, code_hash="c" * 64, status=PickupCode.USED,
                      expires_at=now - timedelta(days=1))
    db.session.add_all([expired, fresh, used])
    db.session.commit()
    job = make_job()

    run = scheduler.run_now(db.session, job.id, user_id=None)

    assert (run.status, run.result, run.trigger) == ("succeeded", "Released 1 expired pickup code(s).", "manual")
    db.session.expire_all()
    assert [expired.status, fresh.status, used.status] == ["replaced", "active", "used"]


def test_outbox_retry_sends_due_failed_sms(app, make, queue, sms):
    package = make.package()
    message = outbox.enqueue_sms(db.session, to="+905551112233", body="Your code is 123456", package_id=package.id)
    message.status, message.attempts, message.next_attempt_at = OutboxMessage.FAILED, 1, utcnow() - timedelta(1)
    later = outbox.enqueue_sms(db.session, to="+905551112244", body="Not yet", package_id=package.id)
    later.status, later.next_attempt_at = OutboxMessage.FAILED, utcnow() + timedelta(hours=1)
    db.session.commit()
    job = make_job(name="Retry SMS", job_type="outbox_retry", parameters={"limit": 10})

    run = scheduler.run_now(db.session, job.id, user_id=None)

    assert run.result == "Tried 1 SMS: 1 sent, 0 still failing."
    assert [s.to for s in sms.outbox] == ["+905551112233"]
    db.session.expire_all()
    assert (message.status, later.status) == ("sent", "failed")


def test_purge_idempotency_records_deletes_only_old_ones(app, make, queue):
    user = make.user("api", "brand_manager")
    for key, age in (("old", 40), ("recent", 2)):
        db.session.add(IdempotencyRecord(user_id=user.id, key=key, request_fingerprint="f" * 64,
                                         created_at=utcnow() - timedelta(days=age)))
    db.session.commit()
    job = make_job(name="Purge", job_type="purge_idempotency_records", parameters={"days": 30})

    run = scheduler.run_now(db.session, job.id, user_id=None)

    assert run.result == "Deleted 1 idempotency record(s) older than 30 day(s)."
    assert db.session.scalars(select(IdempotencyRecord.key)).all() == ["recent"]


def test_report_waiting_packages_counts_old_waiting_packages_per_store(app, make, queue):
    kadikoy, besiktas = make.store("IST-KDK", "Kadıköy"), make.store("IST-BJK", "Beşiktaş")
    for store, state, hours in ((kadikoy, State.WAITING, 30), (kadikoy, State.WAITING, 50),
                                (besiktas, State.WAITING, 26), (besiktas, State.WAITING, 2),
                                (besiktas, State.PACKED, 90)):
        package = make.package(store=store, state=state)
        package.created_at = utcnow() - timedelta(hours=hours)
    db.session.commit()
    job = make_job(name="Waiting report", job_type="report_waiting_packages", parameters={"hours": 24})

    run = scheduler.run_now(db.session, job.id, user_id=None)

    assert run.result == ("3 package(s) waiting longer than 24 h in 2 store(s): "
                          "IST-KDK Kadıköy: 2; IST-BJK Beşiktaş: 1.")


def test_a_failing_job_is_recorded_as_failed_and_does_not_raise(app, queue):
    job = make_job()
    # A job whose type was retired by a later release: running it must fail cleanly.
    job.job_type = "retired_job_type"
    db.session.commit()

    run = scheduler.run_now(db.session, job.id, user_id=None)

    assert run.status == "failed"
    assert run.result == "Failed: Unknown job type 'retired_job_type'."
    assert run.finished_at is not None


# --- the periodic runner -------------------------------------------------------------------------------------

def test_the_periodic_runner_runs_only_due_enabled_jobs_once(app, queue):
    now = utcnow()
    due = make_job(name="Due", schedule="*/10 * * * *", next_run_at=now - timedelta(minutes=1))
    disabled = make_job(name="Disabled", enabled=False)
    disabled.next_run_at = now - timedelta(minutes=5)  # left over from before it was switched off
    later = make_job(name="Later", next_run_at=now + timedelta(minutes=30))
    db.session.commit()

    run_ids = scheduler.run_due_jobs(db.session, now)

    assert [(r.id, r.job_id, r.trigger, r.status) for r in runs()] == [(run_ids[0], due.id, "schedule", "succeeded")]
    db.session.expire_all()
    assert now < due.next_run_at <= now + timedelta(minutes=10)
    assert later.next_run_at == now + timedelta(minutes=30)
    # The same minute ticking again (another worker) finds nothing due.
    assert scheduler.run_due_jobs(db.session, now) == []
    assert len(runs()) == 1


def test_the_tick_task_runs_due_jobs_in_the_queue(app, queue):
    make_job(name="Due", next_run_at=utcnow() - timedelta(seconds=5))

    scheduler.run_due_jobs_task.call_local()

    assert [(r.trigger, r.status, r.result) for r in runs()] == [
        ("schedule", "succeeded", "Released 0 expired pickup code(s).")]


def test_the_tick_gives_up_runs_lost_with_their_workers_and_a_task_delivered_twice_runs_once(app, queue):
    job = make_job()
    long_ago = utcnow() - timedelta(minutes=20)
    db.session.add(JobRun(job_id=job.id, trigger="manual", status="running", task_id="lost", created_at=long_ago,
                          started_at=long_ago, heartbeat_at=long_ago))
    db.session.commit()

    scheduler.run_due_jobs_task.call_local()

    [lost] = runs()
    assert lost.status == "failed" and lost.finished_at is not None
    assert lost.result == "Failed: Its worker stopped (no progress for over 15 minutes); it was given up."
    run = scheduler.run_now(db.session, job.id, user_id=None)
    assert run.status == "succeeded"
    finished = run.finished_at
    assert scheduler.execute_run(db.session, run.id, run.task_id).finished_at == finished  # delivered again: no-op
    assert [r.status for r in runs()] == ["failed", "succeeded"]


# --- the step page -------------------------------------------------------------------------------------------

def job_form(**overrides) -> dict:
    """What the "Add a job" form posts."""
    form = {"form": "new-job", "name": "Nightly waiting report", "job_type": "report_waiting_packages",
            "schedule": "0 7 * * mon-sat", "parameters": '{"hours": 12}', "enabled": "on"}
    form.update(overrides)
    return form


def test_admin_adds_a_job_and_the_step_is_done(client, admin):
    response = client.post("/setup/jobs", data=job_form(), headers=HX)

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="job-create">')
    assert 'id="job-panel"' in html and "Nightly waiting report" in html
    job = db.session.scalar(select(ScheduledJob))
    assert (job.job_type, job.schedule, job.parameters, job.enabled) == (
        "report_waiting_packages", "0 7 * * mon-sat", {"hours": 12}, True)
    assert job.next_run_at > utcnow()
    assert wizard.status(db.session, "jobs").state == SetupStep.DONE
    page = client.get("/setup/jobs").get_data(as_text=True)
    assert "Nightly waiting report" in page and "0 7 * * mon-sat" in page


def test_bad_job_is_refused_with_its_message_and_nothing_saved(client, admin):
    response = client.post("/setup/jobs", data=job_form(schedule="0 25 * * *"), headers=HX)

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Hour must be from 0 to 23; 25 is not." in html
    assert 'value="0 25 * * *"' in html and 'aria-invalid="true"' in html
    assert db.session.scalar(select(func.count()).select_from(ScheduledJob)) == 0
    assert wizard.status(db.session, "jobs").state == SetupStep.NOT_STARTED


def test_run_now_records_the_run_and_shows_it(client, admin, make, queue):
    package = make.package(state=State.WAITING)
    package.created_at = utcnow() - timedelta(hours=20)
    db.session.commit()
    client.post("/setup/jobs", data=job_form())
    job = db.session.scalar(select(ScheduledJob))

    response = client.post(f"/setup/jobs/{job.id}/run", headers=HX)

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="job-runs"')
    assert "every 2s" not in html  # finished: no more polling
    expected = f"1 package(s) waiting longer than 12 h in 1 store(s): {package.stock_location.erp_code}"
    assert expected in html and "Run now by ayse" in html
    [run] = runs()
    assert (run.trigger, run.status, run.started_by_id) == ("manual", "succeeded", admin.id)
    assert run.result.startswith(expected) and run.finished_at is not None


def test_runs_list_polls_while_a_run_is_in_progress(client, admin):
    job = make_job()
    db.session.add(JobRun(job_id=job.id, trigger="manual", status="running", started_at=utcnow()))
    db.session.commit()

    html = client.get("/setup/jobs/runs", headers=HX).get_data(as_text=True)

    assert 'hx-get="/setup/jobs/runs" hx-trigger="every 2s"' in html
    assert "Running" in html


def test_admin_edits_and_deletes_a_job(client, admin, queue):
    job = make_job()
    scheduler.run_now(db.session, job.id, user_id=None)
    dialog = client.get(f"/setup/jobs/{job.id}/edit", headers=HX)
    assert 'value="0 3 * * *"' in dialog.get_data(as_text=True)

    response = client.post(f"/setup/jobs/{job.id}", headers=HX, data={
        "form": "edit-job", "name": "Release codes hourly", "job_type": "release_expired_pickup_codes",
        "schedule": "15 * * * *", "parameters": "{}"})

    assert response.status_code == 200 and "close-modal" in response.headers["HX-Trigger"]
    db.session.expire_all()
    assert (job.name, job.schedule, job.enabled, job.next_run_at) == ("Release codes hourly", "15 * * * *", False, None)
    # Creating the job settled the step done; with no enabled job left it needs attention (as through the API).
    assert wizard.status(db.session, "jobs").state == SetupStep.NEEDS_ATTENTION

    response = client.post(f"/setup/jobs/{job.id}/delete", headers=HX)
    assert response.status_code == 200
    assert db.session.scalar(select(func.count()).select_from(ScheduledJob)) == 0
    assert runs() == []


def test_the_form_helpers_show_parameters_and_next_runs(client, admin):
    params = client.get("/setup/jobs/parameters?job_type=purge_idempotency_records&prefix=new", headers=HX)
    html = params.get_data(as_text=True)
    assert '<input id="new-param_days" name="param_days" type="number" value="7"' in html
    assert 'min="1" max="365"' in html and "Keep for (days)" in html

    preview = client.get("/setup/jobs/schedule-preview?schedule=0+3+*+*+*&prefix=new", headers=HX)
    assert "Next runs:" in preview.get_data(as_text=True) and "03:00" in preview.get_data(as_text=True)
    wrong = client.get("/setup/jobs/schedule-preview?schedule=0+3+*&prefix=new", headers=HX)
    assert "5 fields" in wrong.get_data(as_text=True)
