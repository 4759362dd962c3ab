"""Wizard steps 4 to 6: the copy pages, the "Copy now" button, the polled progress panel and the job list."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from stubs.omnitron_server import PASSWORD, USERNAME, omnitron_sandbox, omnitron_sandbox_factory  # noqa: F401

from portal.db_types import utcnow
from portal.extensions import db
from portal.runs import service as runs
from portal.settings import service as settings
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.sync import service as sync
from portal.sync.models import Channel, SyncJob

HX = {"HX-Request": "true"}
PAGES = {"addresses": ("/setup/addresses", "Step 4: Copy addresses"),
         "stock_locations": ("/setup/stock-locations", "Step 5: Copy stores"),
         "channels": ("/setup/channels", "Step 6: Copy channels")}


@pytest.fixture
def app_config(omnitron_sandbox):
    """The portal talks to the sandbox and retries without waiting."""
    return {"OMNITRON_URL": omnitron_sandbox.url, "OMNITRON_BACKOFF_SECONDS": 0.01}


@pytest.fixture
def admin(app, client, make, auth_actions):
    """A logged-in admin, with the Omnitron login saved (step 7)."""
    user = make.user("ayse", role="admin")
    auth_actions.login("ayse")
    settings.set_value(db.session, settings.OMNITRON_CLIENT_SETTINGS,
                       {"auth": {"username": USERNAME, "password": PASSWORD}}, user_id=user.id)
    return user


@pytest.mark.parametrize("kind", list(PAGES))
def test_each_step_page_offers_a_copy_and_asks_omnitron_after_loading(client, admin, kind):
    url, title = PAGES[kind]
    page = client.get(url)
    assert page.status_code == 200
    assert "HX-Request" in page.headers["Vary"]
    html = page.get_data(as_text=True)
    assert html.startswith("<!doctype html>") and title in html
    assert f'hx-get="{url}/required" hx-trigger="load"' in html
    assert "Asking Omnitron…" in html
    assert 'id="sync-copy"' in html and "Copy now" in html
    assert "copied yet." in html and "No copies yet." in html
    assert 'hx-trigger="every 1s"' not in html

    fragment = client.get(url, headers=HX)
    body = fragment.get_data(as_text=True)
    assert "<!doctype" not in body and "<html" not in body
    assert body.lstrip().startswith('<section id="sync-status"')
    assert "HX-Request" in fragment.headers["Vary"]


def test_the_check_says_a_copy_is_needed_then_that_all_is_in_sync(client, admin, immediate_queue):
    needed = client.get("/setup/channels/required", headers=HX).get_data(as_text=True)
    assert '<section id="sync-required"' in needed and 'hx-trigger="load"' not in needed
    assert "Yes, copy now." in needed and "No channels have been copied from Omnitron yet." in needed

    sync.execute(db.session, "channels", user_id=admin.id)
    in_sync = client.get("/setup/channels/required", headers=HX).get_data(as_text=True)
    assert "No, up to date." in in_sync and "In sync: the portal&#39;s 8 channels match Omnitron." in in_sync

    # Without htmx (no JavaScript) the link opens the whole page with the answer in it.
    page = client.get("/setup/channels/required").get_data(as_text=True)
    assert page.startswith("<!doctype html>") and "No, up to date." in page


def test_copy_now_runs_the_job_and_swaps_in_its_summary_the_state_and_the_list(client, admin, immediate_queue,
                                                                              omnitron_sandbox):
    answer = client.post("/setup/channels/copy", headers=HX)
    assert answer.status_code == 200
    toast = json.loads(answer.headers["HX-Trigger"])["toast"]
    job = db.session.scalar(select(SyncJob))
    assert toast == {"message": f"Copied channels (job #{job.id}).", "level": "success"}
    html = answer.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="sync-status"')
    assert 'hx-trigger="every 1s"' not in html
    assert '<strong id="sync-percent">100%</strong>' in html
    assert '<dd id="sync-created">8</dd>' in html and '<dd id="sync-unchanged">0</dd>' in html
    assert "8 channels read from Omnitron: 8 created, 0 updated, 0 unchanged, 0 failed." in html
    assert '<section id="sync-jobs" class="setup-panel" aria-labelledby="sync-jobs-title" hx-swap-oob="true">' in html
    assert f'<tr id="sync-job-{job.id}">' in html and "by ayse" in html
    assert '<p id="step-state" hx-swap-oob="true">' in html and "Done" in html
    assert html.count('id="sync-jobs"') == 1
    # The "is a copy needed?" panel is swapped in again and asks Omnitron afresh.
    assert ('<section id="sync-required" class="setup-panel sync-required" aria-labelledby="sync-required-title" '
            'aria-live="polite" hx-swap-oob="true"\n  hx-get="/setup/channels/required" hx-trigger="load"') in html
    assert db.session.scalar(select(func.count()).select_from(Channel)) == 8
    assert wizard.status(db.session, "channels").state == SetupStep.DONE


def test_copy_now_without_htmx_redirects_to_the_step_with_a_message(client, admin, immediate_queue):
    answer = client.post("/setup/stock-locations/copy")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/setup/stock-locations")
    page = client.get("/setup/stock-locations").get_data(as_text=True)
    assert "Copied stock locations (job #" in page
    assert "100 stock locations read from Omnitron: 100 created" in page


def test_the_status_panel_polls_every_second_while_the_job_runs_and_stops_when_it_ends(client, admin):
    job = sync.start_job(db.session, "addresses", user_id=admin.id)  # queued; no worker has taken it yet
    running = client.get("/setup/addresses/status", headers=HX).get_data(as_text=True)
    assert 'hx-get="/setup/addresses/status" hx-trigger="every 1s" hx-swap="outerHTML"' in running
    assert "Waiting for a worker" in running and 'id="sync-progress-bar"' in running
    assert 'id="sync-copy"' not in running  # no second start while one runs
    assert 'id="step-state"' not in running

    refused = client.post("/setup/addresses/copy", headers=HX)
    assert refused.status_code == 409
    assert f"A copy of addresses is already running (job #{job.id}, 0% done)." in refused.get_data(as_text=True)

    sync.sync_kind(db.session, job.id, token=job.task_id)  # what the worker does
    ended = client.get("/setup/addresses/status", headers=HX).get_data(as_text=True)
    assert "hx-trigger" not in ended.split("</section>")[0].split(">")[0]
    assert 'data-polling' not in ended
    assert "addresses read from Omnitron:" in ended and 'id="sync-copy"' in ended
    assert '<p id="step-state" hx-swap-oob="true">' in ended


def test_a_job_whose_worker_died_stops_polling_and_offers_to_carry_on(client, admin, immediate_queue):
    job = sync.start_job(db.session, "channels", user_id=admin.id)
    assert runs.claim(db.session, SyncJob, job.id, job.task_id)  # a worker took it...
    db.session.execute(update(SyncJob).where(SyncJob.id == job.id)
                       .values(heartbeat_at=utcnow() - timedelta(minutes=3)))  # ...and died 3 minutes ago
    db.session.commit()

    html = client.get("/setup/channels/status", headers=HX).get_data(as_text=True)
    assert "data-polling" not in html
    assert "its worker has probably stopped" in html and "Carry on copying" in html

    answer = client.post("/setup/channels/copy", headers=HX)
    assert answer.status_code == 200
    resumed = db.session.scalar(select(SyncJob).order_by(SyncJob.id.desc()))
    assert resumed.id != job.id and resumed.status == SyncJob.DONE and resumed.cursor["resumed_from"] == job.id
    assert "8 channels read from Omnitron" in answer.get_data(as_text=True)


def test_a_stopped_job_shows_why_and_offers_to_carry_on(client, admin, omnitron_sandbox, immediate_queue):
    omnitron_sandbox.add_fault("/api/v1/channels/", status=500, times=None)
    answer = client.post("/setup/channels/copy", headers=HX)
    html = answer.get_data(as_text=True)
    assert json.loads(answer.headers["HX-Trigger"])["toast"]["level"] == "error"
    assert "Stopped" in html and "Omnitron answered 500 to GET /api/v1/channels/" in html
    assert "Copy now" in html  # it stopped before any page was copied: nothing to carry on from
    page = client.get("/setup/channels").get_data(as_text=True)
    assert "Needs attention" in page and "Copy job #" in page

    omnitron_sandbox.add_fault("/api/v1/districts/", page=2, status=500, times=None)
    html = client.post("/setup/addresses/copy", headers=HX).get_data(as_text=True)
    assert "Copying stopped at districts page 2 of 6." in html
    assert "Pages already copied are kept: run the copy again to carry on from there." in html
    assert "Carry on copying" in html


def test_only_admins_open_the_copy_steps(client, make, auth_actions):
    make.user("kasa", role="staff")
    auth_actions.login("kasa")
    for url, _ in PAGES.values():
        assert client.get(url).status_code == 403
    assert client.post("/setup/channels/copy", headers=HX).status_code == 403
    assert db.session.scalar(select(func.count()).select_from(SyncJob)) == 0
