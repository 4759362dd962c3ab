"""Fewer taps in the wizard, nothing less checked: "Save and test" in step 9, the demo's cargo company as the
form's start in step 14, a default job type and name in step 15, the only store ticked for a new user in step 2."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from stubs.geocoding_server import GOOD_GOOGLE_KEY, geocoding_stub  # noqa: F401

from portal.cargo.models import CargoCompany
from portal.extensions import db
from portal.jobs.models import ScheduledJob
from portal.setup import service as wizard
from portal.setup.models import SetupStep

HTMX = {"HX-Request": "true"}


@pytest.fixture
def app_config(geocoding_stub):
    """Both geocoding providers point at the local stub."""
    return {"GEOCODING_GOOGLE_BASE_URL": geocoding_stub.url, "GEOCODING_YANDEX_BASE_URL": geocoding_stub.url,
            "GEOCODING_TIMEOUT_SECONDS": 2}


@pytest.fixture
def admin(make, auth_actions):
    """A logged-in admin."""
    user = make.user("root", role="admin")
    auth_actions.login("root")
    return user


def _state(key: str) -> str:
    db.session.expire_all()
    return wizard.status(db.session, key).state


# --- step 9: Save and test ---------------------------------------------------------------------------------------

def test_save_and_test_saves_the_key_and_finishes_the_step_in_one_post(client, admin):
    response = client.post("/setup/geolocation", headers=HTMX,
                           data={"provider": "google", "api_key": GOOD_GOOGLE_KEY, "then": "test"})

    assert response.status_code == 200
    assert 'id="geolocation-result"' in response.text and "The key works." in response.text
    assert _state("geolocation") == SetupStep.DONE
    assert 'id="way-on"' in response.text  # the way on comes with the answer


def test_save_alone_still_waits_for_a_test(client, admin):
    client.post("/setup/geolocation", headers=HTMX, data={"provider": "google", "api_key": GOOD_GOOGLE_KEY})
    assert _state("geolocation") == SetupStep.IN_PROGRESS


def test_save_and_test_with_a_refused_key_says_why_and_the_step_needs_attention(client, admin):
    response = client.post("/setup/geolocation", headers=HTMX,
                           data={"provider": "google", "api_key": "AIza-wrong-key-000", "then": "test"})

    assert "refused the API key" in response.text
    assert "AIza-wrong-key-000" not in response.text
    assert _state("geolocation") == SetupStep.NEEDS_ATTENTION


def test_save_and_test_without_a_key_tests_nothing(client, admin):
    response = client.post("/setup/geolocation", headers=HTMX, data={"provider": "google", "api_key": "",
                                                                     "then": "test"})
    assert response.status_code == 422
    assert 'id="geolocation-result"' not in response.text
    assert _state("geolocation") != SetupStep.DONE


def test_the_page_offers_save_and_test_first(client, admin):
    html = client.get("/setup/geolocation").text
    assert html.index('id="save-and-test"') < html.index('id="save-only"')


# --- step 14: the demo's cargo company -------------------------------------------------------------------------

def test_in_the_demo_the_new_cargo_form_starts_as_the_demo_client(app, client, admin):
    app.config["DEMO_SANDBOX_URL"] = "http://127.0.0.1:9"
    html = client.get("/setup/cargo-companies").text

    assert 'id="demo-cargo-note"' in html
    assert 'value="Demo Kargo"' in html and 'value="DEMO-KARGO"' in html
    assert 'id="cargo-is-demo" name="is_demo_client" value="on" role="switch" checked' in html
    assert 'value="DemoShippingClient" required checked' in html
    assert '<option value="yurtici" selected>' in html


def test_the_demo_cargo_company_is_added_as_it_stands(app, client, admin):
    app.config["DEMO_SANDBOX_URL"] = "http://127.0.0.1:9"
    response = client.post("/setup/cargo-companies", headers=HTMX, data={
        "name": "Demo Kargo", "erp_code": "DEMO-KARGO", "is_managed_by_oms": "on", "is_demo_client": "on",
        "shipping_company": "yurtici", "demo_client": "DemoShippingClient"})

    assert response.status_code == 200
    company = db.session.scalar(select(CargoCompany))
    assert company.is_demo_client and company.erp_code == "DEMO-KARGO"
    assert _state("cargo_companies") == SetupStep.DONE
    # With a company, the form is empty again: no second demo company offered.
    html = client.get("/setup/cargo-companies").text
    assert 'id="demo-cargo-note"' not in html
    assert 'id="cargo-name" name="name" type="text" required maxlength="120" value=""' in html


def test_outside_the_demo_the_cargo_form_starts_empty(app, client, admin):
    app.config["DEMO_SANDBOX_URL"] = ""
    html = client.get("/setup/cargo-companies").text
    assert 'id="demo-cargo-note"' not in html
    assert 'value="Demo Kargo"' not in html


# --- step 15: a default job type, and a name from it -------------------------------------------------------------

def test_the_new_job_form_starts_with_the_first_type_without_a_job(client, admin):
    html = client.get("/setup/jobs").text
    assert '<option value="release_expired_pickup_codes" selected>' in html

    client.post("/setup/jobs", data={"form": "new-job", "name": "", "job_type": "release_expired_pickup_codes",
                                     "schedule_kind": "daily", "schedule_time": "03:00", "enabled": "on"})
    html = client.get("/setup/jobs").text
    assert '<option value="release_expired_pickup_codes" selected>' not in html
    assert '<option value="outbox_retry" selected>' in html


def test_a_new_job_without_a_name_is_named_after_its_type(client, admin):
    response = client.post("/setup/jobs", headers=HTMX, data={
        "form": "new-job", "name": "  ", "job_type": "outbox_retry", "schedule_kind": "daily",
        "schedule_time": "03:00", "param_limit": "100", "enabled": "on"})

    assert response.status_code == 200
    job = db.session.scalar(select(ScheduledJob))
    assert job.name == "Retry failed SMS" and job.schedule == "0 3 * * *"
    assert _state("jobs") == SetupStep.DONE


def test_a_new_job_without_a_name_or_a_type_is_refused(client, admin):
    response = client.post("/setup/jobs", headers=HTMX, data={
        "form": "new-job", "name": "", "job_type": "", "schedule_kind": "daily", "schedule_time": "03:00"})
    assert response.status_code == 422
    assert db.session.scalar(select(ScheduledJob)) is None


def test_an_edited_job_still_needs_its_name(client, admin):
    client.post("/setup/jobs", data={"form": "new-job", "name": "Codes", "job_type": "release_expired_pickup_codes",
                                     "schedule_kind": "daily", "schedule_time": "03:00", "enabled": "on"})
    job = db.session.scalar(select(ScheduledJob))
    response = client.post(f"/setup/jobs/{job.id}", headers=HTMX, data={
        "form": "edit-job", "name": "", "job_type": "release_expired_pickup_codes", "schedule_kind": "daily",
        "schedule_time": "03:00", "enabled": "on"})
    assert response.status_code == 422
    db.session.expire_all()
    assert db.session.get(ScheduledJob, job.id).name == "Codes"


# --- step 2: the only store ------------------------------------------------------------------------------------

def test_with_one_store_a_new_user_starts_with_it(client, admin, make):
    only = make.store("IST-KDK", "Kadıköy Store")
    db.session.commit()
    html = client.get("/setup/users").text
    assert f'name="stores" value="{only.id}" checked' in html


def test_with_two_stores_none_is_ticked_for_a_new_user(client, admin, make):
    make.store("IST-KDK", "Kadıköy Store")
    make.store("IST-BSK", "Beşiktaş Store")
    db.session.commit()
    html = client.get("/setup/users").text
    assert 'name="stores" value=' in html
    assert "checked>" not in html.split('id="user-create"', 1)[1].split("</fieldset>", 1)[0]
