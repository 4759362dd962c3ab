"""A wizard that guides (issue 10): what to do next, prerequisites in order, the truth about pre-filled steps,
Previous/Next on every step, plain names first, the schedule builder, job parameter forms, and outside
systems' errors told as what to do."""
from __future__ import annotations

import re
import socket

import pytest
from flask import url_for
from sqlalchemy import func, select

from portal import crypto, explain
from portal.extensions import db
from portal.geolocation import service as geocoding
from portal.geolocation.client import GeocodingError
from portal.integrations import service as integrations
from portal.integrations.engines import ENGINES, ProbeResult
from portal.jobs import job_types, scheduler, schedules
from portal.jobs.models import ScheduledJob
from portal.omnitron import OmnitronAuthError, OmnitronUnreachable
from portal.seed import seed_omnitron_login
from portal.settings import service as settings
from portal.settings import summary
from portal.settings.models import ApplicationSetting
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.setup.steps import BY_KEY, STEPS, prerequisites
from portal.webhooks import catalogue

HX = {"HX-Request": "true"}


@pytest.fixture
def admin(make, auth_actions):
    """A logged-in admin."""
    user = make.user("ayse", role="admin")
    assert auth_actions.login("ayse").status_code == 302
    return user


def done(*keys: str) -> None:
    """Mark steps done (by the system)."""
    for key in keys:
        wizard.mark(db.session, key, SetupStep.DONE, user_id=None)


def numbers(steps) -> list[int]:
    """The numbers of steps (or statuses)."""
    return [getattr(s, "step", s).number for s in steps]


# --- next step and prerequisites ----------------------------------------------------------------------------

def test_prerequisites_come_in_the_order_they_must_be_done():
    assert numbers(prerequisites(BY_KEY["machine"])) == []
    assert numbers(prerequisites(BY_KEY["application"])) == [1, 7]
    assert numbers(prerequisites(BY_KEY["addresses"])) == [1, 7, 3]  # 3 needs 1 and 7, so it comes after them
    assert numbers(prerequisites(BY_KEY["scenarios"])) == [1, 7, 3, 5, 6]
    assert numbers(prerequisites(BY_KEY["order_filtering"])) == [1, 7, 3, 6]


def test_the_next_step_is_the_first_unfinished_one_whose_prerequisites_are_finished(app):
    assert wizard.guide(db.session).next.step.number == 1
    done("machine", "users")
    # Step 3 waits for step 7, and 4 to 6 wait for 3: step 7 is next although it comes later in the list.
    assert wizard.guide(db.session).next.step.number == 7
    done("omnitron_credentials")
    assert wizard.guide(db.session).next.step.number == 3
    wizard.skip(db.session, "application", "later", user_id=None)  # a skipped step lets its followers go
    assert wizard.guide(db.session).next.step.number == 4
    for step in STEPS:
        wizard.mark(db.session, step.key, SetupStep.DONE, user_id=None)
    assert wizard.guide(db.session).next is None


def test_steps_needing_attention_are_listed_with_their_reason(app):
    wizard.mark(db.session, "stock_integration", SetupStep.NEEDS_ATTENTION, user_id=None, note="The test failed.")
    guide = wizard.guide(db.session)
    assert numbers(guide.attention) == [10]
    assert guide.attention[0].reason == "The test failed."


def test_the_home_leads_with_the_next_step_then_attention_then_all_steps(client, admin):
    done("machine", "users")
    wizard.mark(db.session, "geolocation", SetupStep.NEEDS_ATTENTION, user_id=None, note="The key was refused.")

    html = client.get("/setup/").get_data(as_text=True)

    next_card = html.index('id="next-step"')
    attention = html.index('id="needs-attention"')
    all_steps = html.index('id="setup-steps"')
    assert next_card < attention < all_steps
    card = html[next_card:attention]
    assert "Step 7: OMS credentials" in card and 'href="/setup/omnitron-credentials"' in card
    assert "Start step 7" in card
    assert "Step 9: Geolocation discovery" in html[attention:all_steps]
    assert "The key was refused." in html[attention:all_steps]
    # Step 4's prerequisites still to do are links in the order to do them: 7, then 3 (1 is done).
    deps = re.search(r'id="deps-addresses">(.*?)</p>', html, re.S).group(1)
    assert re.findall(r'href="([^"]+)"', deps) == ["/setup/omnitron-credentials", "/setup/application"]
    assert "step 7 (OMS credentials)" in deps and "step 3 (Control OMS application)" in deps
    assert "Do these first, in this order:" in html


def test_the_home_says_when_setup_is_finished(client, admin):
    done(*[s.key for s in STEPS])
    html = client.get("/setup/").get_data(as_text=True)
    assert "Setup finished" in html and 'id="needs-attention"' not in html


# --- the truth about pre-filled steps ------------------------------------------------------------------------

def test_a_login_saved_before_the_rules_existed_reads_as_done(client, admin):
    # An older demo database: the login is in the table, but no rule settled step 7 when it was written.
    sealed = {settings.ENCRYPTED: crypto.encrypt("sandbox-password")}
    db.session.add(ApplicationSetting(key=settings.OMNITRON_CLIENT_SETTINGS,
                                      json_value={"auth": {"username": "oms.application", "password": sealed}}))
    db.session.commit()
    assert wizard.status(db.session, "omnitron_credentials").state == SetupStep.NOT_STARTED

    html = client.get("/setup/").get_data(as_text=True)

    db.session.expire_all()
    assert wizard.status(db.session, "omnitron_credentials").state == SetupStep.DONE
    row = re.search(r'id="step-omnitron_credentials">(.*?)</li>', html, re.S).group(1)
    assert "Done" in row and "Not started" not in row


def test_the_demo_seed_leaves_step_7_done(app):
    seed_omnitron_login(db.session)
    assert wizard.status(db.session, "omnitron_credentials").state == SetupStep.DONE
    # ...and step 3, which needs 1 and 7, now waits only for step 1.
    assert numbers(wizard.status(db.session, "application").waiting_for) == [1]


def test_a_skipped_step_with_a_saved_setting_stays_skipped(client, admin):
    wizard.skip(db.session, "order_filtering", "later", user_id=None)
    settings.set_value(db.session, settings.ORDER_FILTERING,
                       {"statuses": ["approved"], "channels": [], "start_date": None, "exclude_test_orders": True,
                        "page_size": 100}, user_id=None)  # the save marks it done (the rule)
    wizard.skip(db.session, "order_filtering", "really later", user_id=None)
    client.get("/setup/")
    db.session.expire_all()
    assert wizard.status(db.session, "order_filtering").state == SetupStep.SKIPPED


# --- Previous / Next, and the way on -------------------------------------------------------------------------

@pytest.mark.parametrize("step", STEPS, ids=[s.key for s in STEPS])
def test_every_step_page_has_previous_next_and_its_number(app, client, admin, step):
    with app.test_request_context():
        url = url_for(step.endpoint)
    response = client.get(url)
    html = response.get_data(as_text=True)

    assert response.status_code == 200
    assert f"Step {step.number} of 15" in html
    nav = html[html.index('class="step-nav"'):]
    prev_link = re.search(r'href="([^"]+)"[^>]*rel="prev"', nav)
    next_link = re.search(r'href="([^"]+)"[^>]*rel="next"', nav)
    with app.test_request_context():
        prev_url = url_for(step.previous.endpoint) if step.previous else None
        next_url = url_for(step.following.endpoint) if step.following else None
    assert (prev_link.group(1) if prev_link else None) == prev_url
    assert (next_link.group(1) if next_link else None) == next_url
    if prev_url:
        assert f"Previous: step {step.number - 1}" in nav
    if next_url:
        assert f"Next: step {step.number + 1}" in nav
    assert 'href="/setup/"' in nav


def test_a_done_step_shows_the_way_on(client, admin):
    done("machine")
    html = client.get("/setup/machine").get_data(as_text=True)
    way_on = html[html.index('id="step-next"'):]
    assert "Step 1 done." in way_on
    assert re.search(r'href="/setup/users" id="way-on"', way_on)
    assert "Next: step 2 (Create users)" in way_on


def test_the_way_on_comes_with_the_htmx_answer_that_finishes_a_step(client, admin):
    response = client.post("/setup/jobs", headers=HX, data={
        "form": "new-job", "name": "Nightly", "job_type": "release_expired_pickup_codes", "params_form": "1",
        "schedule_kind": "daily", "schedule_time": "03:00", "enabled": "on"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<div id="step-next" hx-swap-oob="true">' in html and "Step 15 done." in html


# --- plain names first ---------------------------------------------------------------------------------------

def test_every_event_has_a_plain_name_and_the_vendor_name_is_secondary():
    assert set(catalogue.EVENT_TYPES) <= set(catalogue.PLAIN_NAMES)
    assert catalogue.plain_name(catalogue.READY_FOR_CUSTOMER_PICKUP) == "Package ready for pickup"
    assert catalogue.vendor_label(catalogue.READY_FOR_CUSTOMER_PICKUP) == "PackageReadyForCustomerPickupWhispererEvent"
    assert catalogue.vendor_label(catalogue.PACKAGE_CREATED) == "package.created"
    assert catalogue.plain_name("order.unknown") == "order.unknown"


def test_step_12_lists_events_by_plain_name(client, admin):
    html = client.get("/setup/events").get_data(as_text=True)
    assert "<strong>Package ready for pickup</strong>" in html
    assert '<code class="vendor-name">PackageReadyForCustomerPickupWhispererEvent</code>' in html


def test_step_titles_are_plain_with_the_setting_key_as_a_secondary_label(client, admin):
    html = client.get("/setup/order-filtering").get_data(as_text=True)
    title = re.search(r"<h1>(.*?)</h1>", html, re.S).group(1)
    assert title.startswith("Step 8: Order filtering")
    assert '<small class="vendor-key" id="vendor-key">' in title and "<code>ORDER_FILTERING</code>" in title
    assert BY_KEY["omnitron_credentials"].summary.startswith("The Omnitron user")


def test_a_saved_setting_reads_as_a_summary_not_json(client, admin):
    client.post("/setup/order-filtering", data={"statuses": ["approved", "shipped"], "page_size": "50",
                                                "exclude_test_orders": "on"})
    html = client.get("/setup/order-filtering").get_data(as_text=True)
    summary_html = re.search(r'<dl class="summary-list" id="order-filtering-summary">(.*?)</dl>', html, re.S).group(1)
    assert "<dt>Order statuses</dt><dd>Approved, Shipped</dd>" in summary_html
    assert "<dt>Channels</dt><dd>Every channel</dd>" in summary_html
    assert "<dt>Leave out test orders</dt><dd>Yes</dd>" in summary_html
    assert "<dt>Orders per request</dt><dd>50</dd>" in summary_html


def test_the_settings_page_names_settings_plainly_and_masks_secrets(client, admin):
    settings.set_value(db.session, settings.OMNITRON_CLIENT_SETTINGS,
                       {"auth": {"username": "oms.application", "password": "sandbox-password"}}, user_id=None)
    settings.set_value(db.session, settings.WANTED_EVENTS, [catalogue.READY_FOR_CUSTOMER_PICKUP], user_id=None)
    html = client.get("/admin/settings").get_data(as_text=True)
    assert "Omnitron login" in html and "<code>OMNITRON_CLIENT_SETTINGS</code>" in html
    assert "<dt>Username</dt><dd>oms.application</dd>" in html
    assert "sandbox-password" not in html
    assert "<dt>Wanted events</dt><dd>Package ready for pickup</dd>" in html
    assert summary.setting_name("SOMETHING_ELSE") == "SOMETHING_ELSE"


# --- the schedule builder ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("built", "cron"), [
    (schedules.Schedule(schedules.EVERY_MINUTES, every=15), "*/15 * * * *"),
    (schedules.Schedule(schedules.EVERY_MINUTES, every=1), "* * * * *"),
    (schedules.Schedule(schedules.HOURLY, minute=20), "20 * * * *"),
    (schedules.Schedule(schedules.DAILY, hour=3, minute=0), "0 3 * * *"),
    (schedules.Schedule(schedules.WEEKLY, hour=9, minute=30, weekday=1), "30 9 * * 1"),
    (schedules.Schedule(schedules.WEEKLY, hour=22, minute=5, weekday=0), "5 22 * * 0"),
])
def test_the_builder_writes_cron_and_reads_it_back(built, cron):
    assert built.expression() == cron
    again = schedules.read(cron)
    assert (again.kind, again.expression()) == (built.kind, cron)
    if built.kind != schedules.EVERY_MINUTES:
        assert again.time == built.time
    scheduler.parse_cron(cron)  # and the scheduler accepts what the builder writes


@pytest.mark.parametrize("cron", ["0 7 * * mon-sat", "*/15 8-20 * * *", "0 0 1 * *", "0 25 * * *", "61 * * * *"])
def test_other_cron_stays_in_the_advanced_field(cron):
    read = schedules.read(cron)
    assert (read.kind, read.cron) == (schedules.CRON, cron)


def test_sunday_as_7_is_read_as_sunday():
    assert schedules.read("0 9 * * 7").weekday == 0


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"schedule_kind": "every_minutes", "schedule_every": "0"}, "schedule_every", "from 1 to 59"),
    ({"schedule_kind": "hourly", "schedule_minute": "x"}, "schedule_minute", "from 0 to 59"),
    ({"schedule_kind": "daily", "schedule_time": "25:00"}, "schedule_time", "like 03:00"),
    ({"schedule_kind": "weekly", "schedule_time": "09:00", "schedule_weekday": "9"}, "schedule_weekday", "0 to 6"),
    ({"schedule_kind": "fortnightly"}, "schedule_kind", "how often"),
])
def test_bad_builder_fields_are_refused_by_name(form, field, message):
    with pytest.raises(Exception) as caught:
        schedules.from_form(form)
    assert caught.value.field == field and message in caught.value.message


def test_a_job_saved_from_the_builder_stores_cron_and_edits_in_the_builder(client, admin):
    response = client.post("/setup/jobs", headers=HX, data={
        "form": "new-job", "name": "Weekly report", "job_type": "report_waiting_packages", "params_form": "1",
        "schedule_kind": "weekly", "schedule_time": "08:30", "schedule_weekday": "1", "param_hours": "48",
        "enabled": "on"})
    assert response.status_code == 200
    job = db.session.scalar(select(ScheduledJob))
    assert (job.schedule, job.parameters) == ("30 8 * * 1", {"hours": 48})

    dialog = client.get(f"/setup/jobs/{job.id}/edit", headers=HX).get_data(as_text=True)
    assert re.search(r'id="edit-kind-weekly" name="schedule_kind" value="weekly" checked', dialog)
    assert 'name="schedule_time" type="time" value="08:30"' in dialog
    assert '<option value="1" selected>Monday</option>' in dialog
    assert 'name="param_hours" type="number" value="48"' in dialog

    page = client.get("/setup/jobs").get_data(as_text=True)
    assert "Every Monday at 08:30" in page and "<dt>Waiting longer than (hours)</dt><dd>48</dd>" in page


def test_an_existing_cron_job_edits_in_the_advanced_field(client, admin):
    job = scheduler.create_job(db.session, scheduler.JobInput("Weekdays", "release_expired_pickup_codes",
                                                              "0 7 * * mon-sat", {}, True))
    dialog = client.get(f"/setup/jobs/{job.id}/edit", headers=HX).get_data(as_text=True)
    assert re.search(r'id="edit-kind-cron" name="schedule_kind" value="cron" checked', dialog)
    assert 'value="0 7 * * mon-sat"' in dialog


def test_the_preview_describes_the_built_schedule(client, admin):
    html = client.get("/setup/jobs/schedule-preview?prefix=new&schedule_kind=daily&schedule_time=06:15",
                      headers=HX).get_data(as_text=True)
    assert "Every day at 06:15" in html and "Next runs:" in html
    wrong = client.get("/setup/jobs/schedule-preview?prefix=new&schedule_kind=daily&schedule_time=6",
                       headers=HX).get_data(as_text=True)
    assert "like 03:00" in wrong


# --- job parameter forms -------------------------------------------------------------------------------------

def test_every_job_parameter_has_a_label_help_and_default():
    for job_type in job_types.JOB_TYPES.values():
        for param in job_type.params:
            assert param.label and param.help and param.minimum <= param.default <= param.maximum
            assert param.type in (job_types.NUMBER, job_types.SWITCH)


def test_parameter_fields_are_checked_with_clear_messages(client, admin):
    response = client.post("/setup/jobs", headers=HX, data={
        "form": "new-job", "name": "Purge", "job_type": "purge_idempotency_records", "params_form": "1",
        "schedule_kind": "daily", "schedule_time": "03:00", "param_days": "400", "enabled": "on"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Keep for (days) must be a whole number from 1 to 365." in html
    assert re.search(r'id="new-param_days"[^>]*aria-invalid="true"', html)
    assert db.session.scalar(select(func.count()).select_from(ScheduledJob)) == 0


def test_an_empty_number_takes_the_default_and_a_switch_is_stored_as_0_or_1():
    assert job_types.parameters_from_form("purge_idempotency_records", {"param_days": ""}) == {"days": 7}
    assert job_types.parameters_from_form("import_orders", {"param_full": "on"}) == {"full": 1}
    assert job_types.parameters_from_form("import_orders", {}) == {"full": 0}
    assert job_types.parameters_from_form("release_expired_pickup_codes", {"param_x": "1"}) == {}


def test_the_type_change_brings_its_fields(client, admin):
    html = client.get("/setup/jobs/parameters?job_type=import_orders&prefix=new", headers=HX).get_data(as_text=True)
    assert 'type="checkbox" role="switch" id="new-param_full" name="param_full"' in html
    assert "Read every order again" in html and "textarea" not in html


def test_delete_is_not_the_heaviest_button(client, admin):
    scheduler.create_job(db.session, scheduler.JobInput("Nightly", "release_expired_pickup_codes", "0 3 * * *", {},
                                                        True))
    html = client.get("/setup/jobs").get_data(as_text=True)
    assert re.search(r'<button type="submit" class="danger" aria-label="Delete Nightly">', html)


# --- errors from outside systems, told as what to do ---------------------------------------------------------

def test_the_advice_follows_the_kind_of_failure():
    assert explain.advice(explain.UNREACHABLE) == \
        "The address could not be reached: check the URL, and that the service is running."
    assert explain.advice(explain.AUTH) == "The server answered 401: check the username and password."
    assert explain.advice(explain.AUTH, token=True) == "The server answered 401: check the token."
    assert explain.advice(explain.AUTH, needs_credentials=False).startswith("This engine needs no credentials")
    assert [explain.kind_of_status(s) for s in (None, 401, 403, 404, 302, 503, 418)] == [
        "unreachable", "auth", "forbidden", "not_found", "redirect", "server", "other"]


def test_each_outside_system_maps_to_advice_with_the_detail_kept():
    omnitron = explain.omnitron(OmnitronUnreachable("Connection refused", url="http://omnitron.test"))
    assert omnitron.kind == explain.UNREACHABLE and "check the URL" in omnitron.advice
    assert "Connection refused" in omnitron.detail and "http://omnitron.test" in omnitron.detail
    login = explain.omnitron(OmnitronAuthError("refused", status=401))
    assert "username and password" in login.advice and "HTTP status: 401" in login.detail

    refused = ProbeResult(False, "The stock service refused the credentials (HTTP 401). Check the username and "
                                 "password.", 401)
    no_credentials = explain.stock_test(refused, ENGINES["omnitron"], "http://stock.test")
    assert no_credentials.advice.startswith("This engine needs no credentials")
    assert "username and password" not in no_credentials.advice
    assert "username and password" in explain.stock_test(refused, ENGINES["basic_auth_rest"]).advice
    assert explain.stock_test(ProbeResult(True, "Connected", 200), ENGINES["omnitron"]) is None

    geocoding = explain.geocoding(GeocodingError(GeocodingError.INVALID_KEY, "REQUEST_DENIED"))
    assert geocoding.kind == explain.INVALID_KEY and geocoding.detail == "REQUEST_DENIED"


def _closed_port_url() -> str:
    """The URL of a local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_failed_stock_test_shows_what_to_do_with_the_detail_behind_a_disclosure(client, admin):
    integration, _ = integrations.save_integration(db.session, url=_closed_port_url(), stock_engine_type="omnitron",
                                                   user_id=None)
    response = client.post(f"/setup/stock-integration/{integration.id}/test", headers=HX)
    html = response.get_data(as_text=True)
    assert "The address could not be reached: check the URL" in html
    assert re.search(r"<details class=\"explained-detail\">\s*<summary>Technical detail</summary>", html)
    assert "could not be reached" in response.headers["HX-Trigger"]

    # A 401 stored from an earlier test of this engine (which has no credentials) points at the URL.
    integration.last_test_message = "The stock service refused the credentials (HTTP 401). Check the username and password."
    db.session.commit()
    page = client.get("/setup/stock-integration").get_data(as_text=True)
    advice = re.search(r'id="stock-test-\d+-advice">(.*?)</p>', page, re.S).group(1)
    assert advice.startswith("This engine needs no credentials") and "Check the URL" in advice


def test_a_failed_geocoding_test_says_what_to_do_once(client, admin, app):
    url = _closed_port_url()
    app.config["GEOCODING_GOOGLE_BASE_URL"] = url
    geocoding.save_settings(db.session, "google", "AIza-some-key-000", user_id=None)

    response = client.post("/setup/geolocation/test", headers=HX, data={"address": "Kadıköy"})

    html = response.get_data(as_text=True)
    assert 'id="geolocation-result-advice">The address could not be reached: check the URL' in html
    assert html.count(f"could not be reached at {url}") == 1  # the detail, not again as the step's note
    assert '<div id="step-note" hx-swap-oob="true"></div>' in html
    assert wizard.status(db.session, "geolocation").state == SetupStep.NEEDS_ATTENTION
