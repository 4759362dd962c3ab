"""Setup wizard step 12, Event list: the admin ticks the events the brand wants (WANTED_EVENTS) and sees
which still lack an active webhook subscription. The step is done when every wanted event has one.
"""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from portal.errors import ValidationFailed
from portal.extensions import db
from portal.settings import service as settings
from portal.settings.models import ApplicationSetting, SettingChange
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.webhooks import service as webhooks

HTMX = {"HX-Request": "true"}
PAGE = "/setup/events"
TARGET = "http://127.0.0.1:9/oms-events"


@pytest.fixture
def app_config():
    """Subscriptions point at 127.0.0.1 (nothing is delivered in these tests)."""
    return {"WEBHOOK_ALLOW_PRIVATE_TARGETS": True}


@pytest.fixture
def admin(make, auth_actions):
    """A logged-in admin."""
    user = make.user("root", role="admin")
    auth_actions.login("root")
    return user


def subscribe(event_type: str, active: bool = True):
    """A subscription made on the webhook screens."""
    subscription, _ = webhooks.create_subscription(db.session, event_type=event_type, target_url=TARGET,
                                                   is_active=active, user_id=None)
    return subscription


def step() -> SetupStep | None:
    """Step 12's record, read afresh."""
    db.session.expire_all()
    return db.session.scalar(select(SetupStep).where(SetupStep.key == "events"))


def wanted() -> object:
    """WANTED_EVENTS as stored."""
    db.session.expire_all()
    return db.session.scalar(select(ApplicationSetting.json_value).where(ApplicationSetting.key == "WANTED_EVENTS"))


def test_the_page_lists_the_catalogue_with_the_subscriptions_that_cover_each_event(client, admin):
    exact = subscribe("package.created")
    everything = subscribe("*", active=False)
    response = client.get(PAGE)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Step 12: Event list" in html and "No events chosen yet." in html
    assert '<code class="vendor-name">package.status.shipped</code>' in html and "Package shipped" in html
    assert '<code class="vendor-name">stock_location.updated</code>' in html and "Store or warehouse changed" in html
    assert "webhook.test" not in html  # the test event is not something a brand wants
    assert f'href="/webhooks/{exact.id}"' in html and f'href="/webhooks/{everything.id}"' in html
    assert "(active)" in html and "(turned off)" in html  # the "*" one was created switched off
    assert step() is None  # nothing chosen yet: the step is not started


def test_wanted_events_without_an_active_subscription_need_attention_with_subscribe_links(client, admin):
    subscribe("package.created")
    subscribe("package.status.shipped", active=False)
    response = client.post(PAGE, data={"events": ["package.created", "package.status.shipped",
                                                  "package.ready_for_customer_pickup"]}, headers=HTMX)
    assert response.status_code == 200
    assert wanted() == ["package.created", "package.status.shipped", "package.ready_for_customer_pickup"]
    change = db.session.scalar(select(SettingChange).where(SettingChange.key == "WANTED_EVENTS"))
    assert change.user_id == admin.id

    record = step()
    assert record.state == SetupStep.NEEDS_ATTENTION
    assert record.note == ("No active webhook subscription yet for: package.status.shipped, "
                           "package.ready_for_customer_pickup.")
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="events-panel"')
    assert 'id="step-state" hx-swap-oob="true"' in html and "Needs attention" in html
    assert 'href="/webhooks/new?event_type=package.status.shipped"' in html
    assert 'href="/webhooks/new?event_type=package.ready_for_customer_pickup"' in html
    assert 'href="/webhooks/new?event_type=package.created"' not in html
    assert "2 wanted events still need a webhook subscription." in \
        json.loads(response.headers["HX-Trigger"])["toast"]["message"]

    # The link opens the webhook form with the event chosen.
    form = client.get("/webhooks/new?event_type=package.status.shipped").get_data(as_text=True)
    assert '<option value="package.status.shipped" selected>' in form


def test_the_step_is_done_once_every_wanted_event_is_subscribed_and_follows_later_changes(client, admin):
    client.post(PAGE, data={"events": ["package.created", "package.status.packed"]})
    assert step().state == SetupStep.NEEDS_ATTENTION

    # Subscribing to everything on the webhook screens covers both and finishes the step.
    created = client.post("/webhooks/", data={"event_type": "*", "target_url": TARGET, "retry_type": "fixed",
                                              "retry_interval": "60", "max_attempts": "3", "is_active": "y"})
    assert created.status_code == 201
    record = step()
    assert (record.state, record.completed_by_id, record.note) == (SetupStep.DONE, admin.id, "")
    html = client.get(PAGE).get_data(as_text=True)
    assert "Every wanted event has an active subscription." in html

    # Switching that subscription off puts the step back to "needs attention".
    [subscription] = webhooks.list_subscriptions(db.session)
    client.post(f"/webhooks/{subscription.id}/active", data={"active": "false"})
    record = step()
    assert record.state == SetupStep.NEEDS_ATTENTION
    assert "package.created, package.status.packed" in record.note

    # A receiver answering 410 disables subscriptions without the wizard: the page checks again.
    webhooks.set_active(db.session, subscription.id, True, user_id=None)
    assert client.get(PAGE).status_code == 200
    assert step().state == SetupStep.DONE
    webhooks.disable(db.session, subscription.id, "The receiver answered 410 Gone.")
    db.session.commit()
    page = client.get(PAGE).get_data(as_text=True)
    assert step().state == SetupStep.NEEDS_ATTENTION
    assert "No active webhook subscription yet for: package.created, package.status.packed." in page


def test_choosing_no_events_is_a_finished_choice(client, admin):
    response = client.post(PAGE, data={})
    assert response.status_code == 302 and response.headers["Location"] == PAGE
    assert wanted() == []
    assert step().state == SetupStep.DONE
    assert "Event list saved. Every wanted event has a subscription." in client.get(PAGE).get_data(as_text=True)


def test_an_unknown_event_is_refused_and_nothing_is_saved(client, admin):
    response = client.post(PAGE, data={"events": ["package.created", "order.exploded"]}, headers=HTMX)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Unknown event type &#39;order.exploded&#39;: choose events from the list." in html
    assert wanted() is None and step() is None


def test_the_setting_accepts_only_catalogue_events(app):
    stored = settings.set_value(db.session, settings.WANTED_EVENTS,
                                ["stock_location.updated", "package.created", "package.created"], user_id=None)
    assert stored.json_value == ["package.created", "stock_location.updated"]  # catalogue order, once each
    for bad in ("package.created", ["*"], [1], {"events": []}):
        with pytest.raises(ValidationFailed):
            settings.set_value(db.session, settings.WANTED_EVENTS, bad, user_id=None)


def test_only_admins_use_the_step(client, make, auth_actions):
    make.user("brandy", role="brand_manager")
    auth_actions.login("brandy")
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, data={"events": ["package.created"]}).status_code == 403
    assert wanted() is None
    assert wizard.status(db.session, "events").state == SetupStep.NOT_STARTED
