"""Setup step 8's "Fetch orders now": the button runs the import on the job queue and the panel shows its summary."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from stubs.omnitron_server import PASSWORD, USERNAME, omnitron_sandbox  # noqa: F401

from portal.db_types import utcnow
from portal.extensions import db
from portal.orders import service as orders
from portal.orders.models import OrderImportRun
from portal.packages.models import Package
from portal.settings import service as settings

HX = {"HX-Request": "true"}
PAGE = "/setup/order-filtering"
IMPORT = "/setup/order-filtering/import"
FILTER = {"statuses": ["approved"], "channels": [], "start_date": None, "exclude_test_orders": True,
          "page_size": 50}


@pytest.fixture
def app_config(omnitron_sandbox):
    """The portal talks to the sandbox and retries without waiting."""
    return {"OMNITRON_URL": omnitron_sandbox.url, "OMNITRON_BACKOFF_SECONDS": 0.01, "OMNITRON_RETRIES": 1}


@pytest.fixture
def admin(app, make, auth_actions):
    """A logged-in admin with the Omnitron login saved (step 7) and two of the sandbox's stores in the portal."""
    user = make.user("ayse", role="admin")
    auth_actions.login("ayse")
    settings.set_value(db.session, settings.OMNITRON_CLIENT_SETTINGS,
                       {"auth": {"username": USERNAME, "password": PASSWORD}}, user_id=user.id)
    make.store("IST-KDK")
    make.store("IST-BSK")
    return user


def save_filter() -> None:
    """ORDER_FILTERING saved (step 8): approved orders of every channel."""
    settings.set_value(db.session, settings.ORDER_FILTERING, FILTER, user_id=None)


def latest() -> OrderImportRun:
    """The newest run as stored now."""
    db.session.expire_all()
    return db.session.scalar(select(OrderImportRun).order_by(OrderImportRun.id.desc()))


def test_the_step_page_offers_the_import_and_says_nothing_was_fetched_yet(client, admin):
    save_filter()
    html = client.get(PAGE).get_data(as_text=True)
    assert '<section id="order-import"' in html
    assert f'hx-post="{IMPORT}"' in html and 'id="order-import-now"' in html and 'id="order-import-full"' in html
    assert "No orders have been fetched yet." in html
    assert 'id="order-import-hint"' not in html


def test_fetch_orders_now_with_htmx_runs_the_import_and_swaps_in_its_summary(client, admin):
    save_filter()

    answer = client.post(IMPORT, headers=HX)

    assert answer.status_code == 200 and "HX-Request" in answer.headers["Vary"]
    run = latest()
    created = db.session.scalar(select(func.count()).select_from(Package))
    assert run.status == "done" and run.started_by_id == admin.id and run.created == created > 0
    assert run.skip_reasons["channel_not_copied"] > 0 and run.skip_reasons["pickup_store_unknown"] > 0
    toast = json.loads(answer.headers["HX-Trigger"])["toast"]
    assert toast["level"] == "success" and toast["message"].startswith(f"Order import #{run.id}: Fetched {run.fetched}")
    html = answer.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="order-import"') and "data-polling" not in html
    assert f'<dd id="order-import-fetched">{run.fetched}</dd>' in html
    assert f'<dd id="order-import-created">{run.created}</dd>' in html
    assert f'<dd id="order-import-skipped">{run.skipped}</dd>' in html
    assert '<dd id="order-import-already">0</dd>' in html and '<dd id="order-import-failed">0</dd>' in html
    assert "Its channel has not been copied from Omnitron (step 6)." in html
    assert "Its click &amp; collect store is not in the portal (copy the stores, step 5)." in html
    assert "started by ayse" in html

    # Again: nothing new; "Fetch all again" reads them all and finds them imported.
    again = client.post(IMPORT, headers=HX).get_data(as_text=True)
    assert '<dd id="order-import-fetched">0</dd>' in again and f"#{run.id} · " in again
    full = client.post(IMPORT, data={"full": "1"}, headers=HX).get_data(as_text=True)
    assert f'<dd id="order-import-already">{run.created}</dd>' in full and "(all orders again)" in full
    assert db.session.scalar(select(func.count()).select_from(Package)) == created


def test_fetch_orders_now_without_htmx_redirects_to_the_step_with_a_message(client, admin):
    save_filter()

    answer = client.post(IMPORT)

    assert answer.status_code == 303 and answer.headers["Location"].endswith(f"{PAGE}#order-import")
    run = latest()
    page = client.get(PAGE).get_data(as_text=True)
    assert f"Order import #{run.id}: Fetched {run.fetched} order(s): {run.created} package(s) created" in page
    assert f'<dd id="order-import-created">{run.created}</dd>' in page


def test_without_the_filter_the_button_explains_what_to_do_first(client, admin):
    html = client.get(PAGE).get_data(as_text=True)
    assert "Save the order filtering above first" in html

    answer = client.post(IMPORT, headers=HX)

    assert answer.status_code == 422
    assert "Save the order filtering (step 8) first" in answer.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(OrderImportRun)) == 0


def test_the_panel_polls_while_a_run_is_queued_and_refuses_a_second_start(client, admin):
    save_filter()
    run = orders.start_run(db.session, user_id=admin.id)  # queued; no worker has taken it yet

    html = client.get(IMPORT, headers=HX).get_data(as_text=True)
    assert f'hx-get="{IMPORT}" hx-trigger="every 1s" hx-swap="outerHTML"' in html
    assert "Waiting for a worker" in html and 'id="order-import-now"' not in html
    refused = client.post(IMPORT, headers=HX)
    assert refused.status_code == 409
    assert f"An order import is already running (run #{run.id})" in refused.get_data(as_text=True)

    orders.run_import(db.session, run.id, token=run.task_id)  # what the worker does
    ended = client.get(IMPORT, headers=HX).get_data(as_text=True)
    assert "data-polling" not in ended and 'id="order-import-now"' in ended and "Done" in ended
    # Without htmx the status URL leads to the page.
    assert client.get(IMPORT).headers["Location"].endswith(f"{PAGE}#order-import")


def test_a_run_whose_worker_died_stops_polling_and_the_next_fetch_carries_on(client, admin):
    save_filter()
    run = orders.start_run(db.session, user_id=admin.id)
    db.session.execute(update(OrderImportRun).where(OrderImportRun.id == run.id)
                       .values(status="running", heartbeat_at=utcnow() - timedelta(minutes=3)))
    db.session.commit()

    html = client.get(IMPORT, headers=HX).get_data(as_text=True)
    assert "data-polling" not in html and "its worker has probably stopped" in html

    answer = client.post(IMPORT, headers=HX)
    assert answer.status_code == 200
    assert db.session.get(OrderImportRun, run.id).status == "failed"
    assert latest().status == "done"


def test_a_stopped_run_shows_why(client, admin, omnitron_sandbox):
    save_filter()
    omnitron_sandbox.add_fault("/api/v1/orders/", status=500, times=None)

    answer = client.post(IMPORT, headers=HX)

    assert answer.status_code == 200
    assert json.loads(answer.headers["HX-Trigger"])["toast"]["level"] == "error"
    html = answer.get_data(as_text=True)
    assert 'id="order-import-error"' in html and "Omnitron answered 500 to GET /api/v1/orders/" in html
    assert "Stopped" in html and latest().status == "failed"


def test_only_admins_fetch_orders(client, make, auth_actions):
    make.user("kadikoy", role="staff")
    auth_actions.login("kadikoy")
    assert client.post(IMPORT, headers=HX).status_code == 403
    assert client.get(IMPORT, headers=HX).status_code == 403
