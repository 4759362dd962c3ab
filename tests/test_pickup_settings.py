"""A store's pickup settings (issue 9): hold days, manager override, shared slots and opening hours on one page
for managers, validated (every bad field named, nothing written), audited per changed field; the hold days API
and the settings API."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.accounts import auth
from portal.db_types import utcnow
from portal.errors import NotFound, ValidationFailed
from portal.extensions import db
from portal.packages import commands, override, pickup_settings, shelf
from portal.packages.models import Package
from portal.packages.states import State
from portal.settings.models import SettingChange
from portal.stores.models import StockLocation
from tests.floor import HX, text


def audits(store: StockLocation) -> list[tuple[str, int | None]]:
    """The store's pickup settings audit rows: key and user, oldest first."""
    rows = db.session.scalars(select(SettingChange).where(SettingChange.area == pickup_settings.AREA,
                                                          SettingChange.key.like(f"store:{store.id}:%"))
                              .order_by(SettingChange.id))
    return [(row.key, row.user_id) for row in rows]


def token_headers(user) -> dict:
    """Authorization header with a new API token of the user."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


def test_a_stores_hold_days_apply_to_packages_made_ready_from_then_on(app, make, store):
    assert pickup_settings.read(db.session, store.id).effective_hold_days == app.config["OTP_HOLD_DAYS"]
    current, changed = pickup_settings.save(db.session, store.id, user_id=None, hold_days="3")
    assert changed == ["hold_days"] and current.hold_days == 3 and current.effective_hold_days == 3
    package = make.package(store=store, state=State.PACKED)
    before = utcnow()
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    db.session.expire_all()
    until = db.session.get(Package, package.id).hold_until
    assert before + timedelta(days=3) - timedelta(minutes=1) <= until <= utcnow() + timedelta(days=3)
    # Empty: back to the default.
    current, _changed = pickup_settings.save(db.session, store.id, user_id=None, hold_days="")
    assert current.hold_days is None and current.effective_hold_days == app.config["OTP_HOLD_DAYS"]


def test_saving_writes_only_what_changed_and_audits_each_field(app, make, store):
    boss = make.user("boss", role="brand_manager")
    _current, changed = pickup_settings.save(
        db.session, store.id, user_id=boss.id, hold_days=10, manager_override_allowed=False, shared_slots=True,
        opening_hours="Mon-Sat 10:00-22:00\n\n Sun 12:00-20:00 ")
    assert changed == ["hold_days", "manager_override_allowed", "shared_slots", "opening_hours"]
    assert audits(store) == [(f"store:{store.id}:{name}", boss.id) for name in changed]
    assert override.store_allows(db.session, store.id) is False
    assert shelf.shared_slots_allowed(db.session, store.id) is True
    assert pickup_settings.read(db.session, store.id).opening_hours == ["Mon-Sat 10:00-22:00", "Sun 12:00-20:00"]
    # The same values again: nothing changed, nothing audited.
    _current, changed = pickup_settings.save(
        db.session, store.id, user_id=boss.id, hold_days="10", manager_override_allowed=False, shared_slots=True,
        opening_hours=["Mon-Sat 10:00-22:00", "Sun 12:00-20:00"])
    assert changed == [] and len(audits(store)) == 4


@pytest.mark.parametrize("days", ["0", "-1", "366", "7.5", "abc", True, 1000])
def test_bad_hold_days_are_refused(app, store, days):
    with pytest.raises(ValidationFailed) as caught:
        pickup_settings.save(db.session, store.id, user_id=None, hold_days=days)
    assert caught.value.field == "hold_days"


def test_every_bad_field_is_named_and_nothing_is_written(app, store):
    with pytest.raises(ValidationFailed) as caught:
        pickup_settings.save(db.session, store.id, user_id=None, hold_days="0", shared_slots=True,
                             opening_hours="x" * 81, manager_override_allowed="maybe")
    assert set(caught.value.details["errors"]) == {"hold_days", "opening_hours", "manager_override_allowed"}
    db.session.rollback()
    current = pickup_settings.read(db.session, store.id)
    assert current.hold_days is None and current.shared_slots is False and audits(store) == []


def test_an_unknown_or_unseen_store_is_not_found(app, make, store):
    other = make.store()
    with pytest.raises(NotFound):
        pickup_settings.read(db.session, 99999)
    with pytest.raises(NotFound):
        pickup_settings.save(db.session, other.id, user_id=None, store_ids=[store.id], hold_days=3)


# The page -------------------------------------------------------------------------------------------------------


def test_a_manager_sets_everything_on_the_page(client, make, store, auth_actions):
    boss = make.user("boss", role="brand_manager")
    auth_actions.login("boss")
    url = f"/stores/{store.id}/pickup-settings"
    page = text(client.get(url))
    assert 'id="hold_days"' in page and 'id="manager_override"' in page and 'id="shared_slots"' in page
    assert 'id="opening_hours"' in page and "<script>" not in page
    response = client.post(url, data={"hold_days": "5", "shared_slots": "1", "opening_hours": "Mon-Fri 9-18"})
    assert response.status_code == 302 and response.headers["Location"].endswith(url)
    current = pickup_settings.read(db.session, store.id)
    assert (current.hold_days, current.manager_override_allowed, current.shared_slots, current.opening_hours) == (
        5, False, True, ["Mon-Fri 9-18"])
    assert (f"store:{store.id}:manager_override_allowed", boss.id) in audits(store)
    page = text(client.get(url))
    assert 'value="5"' in page and "Pickup settings saved." in page
    # htmx: the form comes back with a toast.
    response = client.post(url, data={"hold_days": "5", "manager_override": "1", "shared_slots": "1",
                                      "opening_hours": "Mon-Fri 9-18"}, headers=HX)
    assert response.status_code == 200 and "Pickup settings saved." in response.headers["HX-Trigger"]
    assert text(response).lstrip().startswith("<form") and override.store_allows(db.session, store.id)


def test_bad_input_on_the_page_names_the_fields_and_saves_nothing(client, make, store, auth_actions):
    make.user("boss", role="admin")
    auth_actions.login("boss")
    url = f"/stores/{store.id}/pickup-settings"
    response = client.post(url, data={"hold_days": "0", "shared_slots": "1", "opening_hours": "a" * 81}, headers=HX)
    assert response.status_code == 422
    page = text(response)
    assert 'id="hold_days-error"' in page and 'id="opening_hours-error"' in page
    assert page.count('aria-invalid="true"') == 2
    assert "Enter a whole number of days from 1 to 365" in page and 'value="0"' in page
    current = pickup_settings.read(db.session, store.id)
    assert current.shared_slots is False and current.opening_hours == [] and audits(store) == []


def test_store_staff_may_not_open_the_page_and_unknown_stores_are_404(client, make, store, auth_actions):
    make.user("ayse", stores=[store])
    auth_actions.login("ayse")
    assert client.get(f"/stores/{store.id}/pickup-settings").status_code == 403
    assert client.post(f"/stores/{store.id}/pickup-settings", data={"hold_days": "1"}).status_code == 403
    auth_actions.logout()
    make.user("boss", role="brand_manager")
    auth_actions.login("boss")
    assert client.get("/stores/99999/pickup-settings").status_code == 404
    chooser = client.get("/stores/pickup-settings", query_string={"store": store.id})
    assert chooser.status_code == 302 and chooser.headers["Location"].endswith(f"/stores/{store.id}/pickup-settings")


def test_the_shelf_page_links_managers_to_the_settings(client, make, store, auth_actions):
    make.user("boss", role="brand_manager")
    auth_actions.login("boss")
    page = text(client.get("/packages/shelf", query_string={"store": store.id}))
    assert f'href="/stores/{store.id}/pickup-settings"' in page


# The API --------------------------------------------------------------------------------------------------------


def test_api_hold_days(client, make, store):
    boss = make.user("boss", role="brand_manager")
    manager = token_headers(boss)
    staff = token_headers(make.user("ayse", stores=[store]))
    url = f"/api/v1/oms/stock-locations/{store.id}/hold-days/"
    default = client.application.config["OTP_HOLD_DAYS"]
    assert client.get(url, headers=manager).json == {"stock_location": store.id, "hold_days": None,
                                                     "default_hold_days": default, "effective_hold_days": default}
    response = client.put(url, json={"hold_days": 12}, headers=manager)
    assert response.status_code == 200 and response.json["effective_hold_days"] == 12
    assert audits(store) == [(f"store:{store.id}:hold_days", boss.id)]
    assert client.put(url, json={"hold_days": None}, headers=manager).json["hold_days"] is None
    for bad in (0, 366, "3", 2.5):
        assert client.put(url, json={"hold_days": bad}, headers=manager).status_code == 400
    assert client.put(url, json={"hold_days": 3}, headers=staff).status_code == 403
    assert client.get(url, headers=staff).status_code == 403
    assert client.get("/api/v1/oms/stock-locations/99999/hold-days/", headers=manager).status_code == 404


def test_api_pickup_settings_change_only_what_is_given(client, make, store):
    manager = token_headers(make.user("boss", role="admin"))
    url = f"/api/v1/oms/stock-locations/{store.id}/pickup-settings/"
    response = client.patch(url, json={"shared_slots": True, "opening_hours": ["Sun 12-20"]}, headers=manager)
    assert response.status_code == 200, response.json
    assert response.json == {"stock_location": store.id, "hold_days": None,
                             "effective_hold_days": client.application.config["OTP_HOLD_DAYS"],
                             "manager_override_allowed": True, "shared_slots": True, "opening_hours": ["Sun 12-20"]}
    response = client.patch(url, json={"hold_days": 4}, headers=manager)
    assert response.json["hold_days"] == 4 and response.json["shared_slots"] is True
    assert response.json["opening_hours"] == ["Sun 12-20"]
    bad = client.patch(url, json={"opening_hours": ["a\x00b"]}, headers=manager)
    assert bad.status_code == 400 and bad.json["field"] == "opening_hours"
    assert client.patch(url, json={"colour": 1}, headers=manager).status_code == 400
    assert client.get(url, headers=manager).json["hold_days"] == 4


def test_the_stores_other_switches_are_audited_the_same_way(client, make, store, auth_actions):
    boss = make.user("boss", role="brand_manager")
    manager = token_headers(boss)
    base = f"/api/v1/oms/stock-locations/{store.id}"
    assert client.put(f"{base}/manager-override/", json={"manager_override_allowed": False},
                      headers=manager).json["manager_override_allowed"] is False
    assert client.put(f"{base}/opening-hours/", json={"opening_hours": ["Mon 9-5"]}, headers=manager).json[
        "opening_hours"] == ["Mon 9-5"]
    assert client.put(f"/api/v1/oms/stores/{store.id}/shelf-settings/", json={"shared_slots_allowed": True},
                      headers=manager).status_code == 200
    auth_actions.login("boss")
    assert client.post(f"/packages/shelf/{store.id}/settings", data={"shared": "0"}).status_code == 302
    assert audits(store) == [(f"store:{store.id}:{name}", boss.id) for name in
                             ("manager_override_allowed", "opening_hours", "shared_slots", "shared_slots")]
    assert shelf.shared_slots_allowed(db.session, store.id) is False
