"""One rule per setup step, kept in the domain: a change settles its step whichever door it came through.

The wizard's pages and the REST API call the same domain functions, and those functions settle the step
(portal/setup/service.settle); neither door settles a step itself. So a change made without any view
settles the step, and the page and the API leave the step in the same state.
"""
from __future__ import annotations

import pytest

from portal.accounts import auth, management
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.jobs import scheduler
from portal.packages import flow_editor
from portal.packages.models import Transition
from portal.packages.states import State
from portal.settings import service as settings
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.webhooks import service as webhooks

API = "/api/v1/oms"
HX = {"HX-Request": "true"}


def state(key: str) -> tuple[str, str]:
    """A step's recorded state and note, fresh from the database."""
    db.session.expire_all()
    status = wizard.status(db.session, key)
    return status.state, status.record.note if status.record else ""


@pytest.fixture
def app_config():
    """Subscriptions may point at 127.0.0.1 (nothing is delivered in these tests)."""
    return {"WEBHOOK_ALLOW_PRIVATE_TARGETS": True}


@pytest.fixture
def vendor_flow_v1(app):
    """The vendor's first flow: no command out of Needs Rescheduling (migration 0004 added them)."""
    db.session.execute(Transition.__table__.delete().where(Transition.slug.in_((
        "reschedule-package", "cancel-package-from-needs-rescheduling", "cancel-package-from-out-of-stock",
        "cancel-package-from-cancellation-waiting"))))
    db.session.commit()


@pytest.fixture
def admin(make, auth_actions):
    """A logged-in admin (for the pages) who also holds an API token (for the API)."""
    user = make.user("ayse", "admin")
    assert auth_actions.login("ayse").status_code == 302
    return user


@pytest.fixture
def api(admin):
    """The admin's API token header."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, admin)}"}


# --- Step 2: users --------------------------------------------------------------------------------------------

def test_a_domain_change_to_users_settles_step_2_without_any_view(app, make):
    root = make.user("root", "admin")
    store = make.store()
    staff = management.create_user(db.session, management.UserInput(
        full_name="Mehmet", role="staff", store_ids=[store.id], username="mehmet", password="correct-horse-1"),
        actor_id=root.id)
    assert state("users")[0] == SetupStep.DONE

    management.set_active(db.session, staff.id, False, actor_id=root.id)
    assert state("users") == (SetupStep.NEEDS_ATTENTION, "Still needed: an active store staff member with a store.")


def test_the_page_and_the_api_settle_step_2_the_same_way(client, admin, api, make):
    staff = make.user("mehmet", "staff")
    client.post("/setup/users/check", headers=HX)
    assert state("users")[0] == SetupStep.DONE
    assert client.patch(f"{API}/users/{staff.id}/", headers=api, json={"is_active": False}).status_code == 200
    through_api = state("users")
    assert client.post(f"/setup/users/{staff.id}/active", data={"active": "true"}, headers=HX).status_code == 200
    assert state("users")[0] == SetupStep.DONE
    assert client.post(f"/setup/users/{staff.id}/active", data={"active": "false"}, headers=HX).status_code == 200
    assert state("users") == through_api == (SetupStep.NEEDS_ATTENTION,
                                             "Still needed: an active store staff member with a store.")
    # Checking again from the page keeps the state the API would (it used to drop back to "in progress").
    client.post("/setup/users/check", headers=HX)
    assert state("users") == through_api


# --- Step 13: package commands ----------------------------------------------------------------------------------

RESCHEDULE = {"name": "Reschedule", "slug": "reschedule-package", "command_code": "DEALLOCATE_PACKAGE_RESERVATIONS",
              "source_state": str(int(State.NEEDS_RESCHEDULING)), "destination_state": str(int(State.WAITING)),
              "visibility": ["OMS_WEB"], "configuration": "{}", "is_active": "on"}


def test_a_domain_change_to_the_flow_settles_step_13_without_any_view(vendor_flow_v1):
    transition = flow_editor.create_transition(db.session, dict(RESCHEDULE), user_id=None)
    assert state("package_commands")[0] == SetupStep.DONE  # the vendor flow lacked only this way out

    with pytest.raises(ValidationFailed):
        flow_editor.set_active(db.session, transition.id, False, user_id=None)  # would strand packages: refused
    db.session.rollback()
    assert state("package_commands")[0] == SetupStep.DONE


def test_the_page_and_the_api_settle_step_13_the_same_way(vendor_flow_v1, client, admin, api):
    client.post("/setup/package-commands/check", headers=HX)
    through_page = state("package_commands")
    assert through_page[0] == SetupStep.IN_PROGRESS and "Needs Rescheduling" in through_page[1]

    created = client.post(f"{API}/transitions/", headers=api, json={**RESCHEDULE, "source_state": "needs_rescheduling",
                                                                    "destination_state": "waiting",
                                                                    "configuration": {}, "is_active": True})
    assert created.status_code == 201, created.json
    assert state("package_commands")[0] == SetupStep.DONE


# --- Step 15: scheduled jobs ------------------------------------------------------------------------------------

def job_input(enabled: bool = True) -> scheduler.JobInput:
    """A valid job."""
    return scheduler.JobInput("Release codes", "release_expired_pickup_codes", "0 3 * * *", {}, enabled)


def test_a_domain_change_to_jobs_settles_step_15_without_any_view(app):
    job = scheduler.create_job(db.session, job_input())
    assert state("jobs") == (SetupStep.DONE, "")
    scheduler.update_job(db.session, job.id, job_input(enabled=False))
    assert state("jobs") == (SetupStep.NEEDS_ATTENTION, "Add at least one enabled job.")
    scheduler.delete_job(db.session, job.id)
    assert state("jobs") == (SetupStep.NEEDS_ATTENTION, "Add at least one enabled job.")


def test_the_page_and_the_api_settle_step_15_the_same_way(client, admin, api):
    job = scheduler.create_job(db.session, job_input())
    assert client.patch(f"{API}/jobs/{job.id}/", headers=api, json={"enabled": False}).status_code == 200
    through_api = state("jobs")
    assert client.post(f"/setup/jobs/{job.id}", headers=HX, data={
        "name": "Release codes", "job_type": "release_expired_pickup_codes", "schedule": "0 3 * * *",
        "parameters": "{}", "enabled": "on"}).status_code == 200
    assert state("jobs")[0] == SetupStep.DONE
    assert client.post(f"/setup/jobs/{job.id}", headers=HX, data={
        "name": "Release codes", "job_type": "release_expired_pickup_codes", "schedule": "0 3 * * *",
        "parameters": "{}"}).status_code == 200
    assert state("jobs") == through_api == (SetupStep.NEEDS_ATTENTION, "Add at least one enabled job.")
    client.post("/setup/jobs/check", headers=HX)
    assert state("jobs") == through_api


# --- Steps 12, 7 and 3: settings saves settle their steps -------------------------------------------------------

def test_saving_wanted_events_and_subscribing_settle_step_12_without_any_view(app):
    settings.set_value(db.session, settings.WANTED_EVENTS, ["package.status.shipped"], user_id=None)
    assert state("events") == (SetupStep.NEEDS_ATTENTION, "No active webhook subscription yet for: package.status.shipped.")

    subscription, _secret = webhooks.create_subscription(
        db.session, event_type="*", target_url="http://127.0.0.1:9/oms-events", user_id=None)
    assert state("events")[0] == SetupStep.DONE
    webhooks.set_active(db.session, subscription.id, False, user_id=None)
    assert state("events")[0] == SetupStep.NEEDS_ATTENTION


def test_the_settings_api_settles_step_12_as_the_page_does(client, admin, api):
    response = client.patch(f"{API}/settings/application_settings/", headers=api,
                            json={"key": settings.WANTED_EVENTS, "json_value": ["package.status.shipped"]})
    assert response.status_code == 200, response.get_data(as_text=True)
    through_api = state("events")
    client.post("/setup/events", data={"events": ["package.status.shipped"]}, headers=HX)
    assert state("events") == through_api and through_api[0] == SetupStep.NEEDS_ATTENTION


def test_saving_the_omnitron_login_settles_steps_7_and_3_without_any_view(app):
    value = {"auth": {"username": "oms.application", "password": "first-password"}}
    settings.set_value(db.session, settings.OMNITRON_CLIENT_SETTINGS, value, user_id=None)
    assert state("omnitron_credentials")[0] == SetupStep.DONE
    wizard.mark(db.session, "application", SetupStep.DONE, user_id=None)

    # The same login again (the password field left empty keeps the stored one): step 3 stays done.
    settings.set_value(db.session, settings.OMNITRON_CLIENT_SETTINGS, {"auth": {"username": "oms.application"}},
                       user_id=None)
    assert state("application")[0] == SetupStep.DONE

    settings.set_value(db.session, settings.OMNITRON_CLIENT_SETTINGS,
                       {"auth": {"username": "oms.application", "password": "second-password"}}, user_id=None)
    assert state("application")[0] == SetupStep.NEEDS_ATTENTION


def test_saving_the_geolocation_key_through_the_api_settles_step_9_as_the_page_does(client, admin, api):
    response = client.patch(f"{API}/settings/application_settings/", headers=api,
                            json={"key": settings.GEOLOCATION_DISCOVERY,
                                  "json_value": {"provider": "google", "api_key": "AIza-first-key-0001"}})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert state("geolocation") == (SetupStep.IN_PROGRESS, "Saved; the key is not tested yet.")

    wizard.mark(db.session, "geolocation", SetupStep.DONE, user_id=None)  # as a passed key test does
    client.patch(f"{API}/settings/application_settings/", headers=api,
                 json={"key": settings.GEOLOCATION_DISCOVERY, "json_value": {"provider": "google"}})
    assert state("geolocation")[0] == SetupStep.DONE  # the same key kept: the test still holds
    client.patch(f"{API}/settings/application_settings/", headers=api,
                 json={"key": settings.GEOLOCATION_DISCOVERY,
                       "json_value": {"provider": "google", "api_key": "AIza-second-key-0002"}})
    assert state("geolocation")[0] == SetupStep.IN_PROGRESS
