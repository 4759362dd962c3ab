"""Setup wizard step 11, scenarios: per channel, which stock locations may fulfil packages and by which rules.
The editor refuses scenarios that could not work, and plan_locations shows the rules change the outcome.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.errors import ValidationFailed
from portal.extensions import db
from portal.scenarios import service as scenarios
from portal.scenarios.models import Scenario
from portal.settings.models import SettingChange
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.stores.models import StockLocation
from portal.sync.models import Channel

HTMX = {"HX-Request": "true"}
PAGE = "/setup/scenarios"
# A delivery address in Kadıköy, Istanbul.
KADIKOY = (40.9902, 29.0293)


@pytest.fixture
def world(app):
    """Two channels and five stock locations: Istanbul stores, an Ankara store, a warehouse, one without coordinates."""
    web = Channel(omnitron_id=1, name="Web", channel_type="web")
    app_channel = Channel(omnitron_id=2, name="Mobile app", channel_type="app")
    old = Channel(omnitron_id=3, name="Old marketplace", is_active=False)

    def location(code, name, city, lat, lon, kind="store", max_quota=10, quota=0, active=True):
        """A stock location."""
        return StockLocation(erp_code=code, name=name, city=city, kind=kind, max_quota=max_quota, quota=quota,
                             is_active=active, latitude=Decimal(lat) if lat else None,
                             longitude=Decimal(lon) if lon else None)

    places = {
        "kadikoy": location("IST-KDK", "Kadıköy Store", "İstanbul", "40.990200", "29.029300"),
        "besiktas": location("IST-BSK", "Beşiktaş Store", "Istanbul", "41.042900", "29.007500", max_quota=5, quota=5),
        "ankara": location("ANK-KZL", "Kızılay Store", "Ankara", "39.920800", "32.854100"),
        "warehouse": location("WH-1", "Central Warehouse", "Kocaeli", "40.765500", "29.940800", kind="warehouse",
                              max_quota=100),
        "nowhere": location("POP-UP", "Pop-up Store", "Istanbul", None, None),
        "closed": location("CLOSED", "Closed Store", "Istanbul", "41.0", "29.0", active=False),
    }
    db.session.add_all([web, app_channel, old, *places.values()])
    db.session.commit()
    return {"web": web, "app": app_channel, "old": old, **places}


@pytest.fixture
def admin(make, auth_actions):
    """A logged-in admin."""
    user = make.user("root", role="admin")
    auth_actions.login("root")
    return user


def _save(world, *, channel="web", name="Web default", active=True, rules=("SORT_BY_PRIORITY",),
          locations=(("kadikoy", 1),), scenario_id=None) -> Scenario:
    """Save a scenario through the domain function, naming locations by fixture key."""
    return scenarios.save_scenario(
        db.session, channel_id=world[channel].id, name=name, is_active=active, rules=list(rules),
        locations=[(world[key].id, priority) for key, priority in locations], scenario_id=scenario_id, user_id=None)


def _scenarios() -> list[Scenario]:
    """Every stored scenario, read afresh."""
    db.session.expire_all()
    return list(db.session.scalars(select(Scenario).order_by(Scenario.id)))


def _state() -> SetupStep | None:
    """Step 11's record, read afresh."""
    db.session.expire_all()
    return wizard.status(db.session, "scenarios").record


def _names(locations) -> list[str]:
    """Names of stock locations, in order."""
    return [loc.erp_code for loc in locations]


# The editor's rules

def test_a_scenario_keeps_its_locations_in_priority_order_and_is_audited(world):
    scenario = _save(world, rules=["SORT_BY_PRIORITY", "SELECT_BY_QUOTA"],
                     locations=[("ankara", 30), ("kadikoy", 10), ("warehouse", None), ("besiktas", 20)])

    stored = _scenarios()[0]
    assert stored.rules == ["SELECT_BY_QUOTA", "SORT_BY_PRIORITY"]
    assert [(row.stock_location.erp_code, row.priority) for row in stored.locations] == [
        ("IST-KDK", 1), ("IST-BSK", 2), ("ANK-KZL", 3), ("WH-1", 4)]
    change = db.session.scalar(select(SettingChange))
    assert (change.area, change.key, change.action) == ("scenario", "Web: Web default", "create")
    assert scenario.id == stored.id


@pytest.mark.parametrize("rules, locations, field, message", [
    (["SORT_BY_PRIORITY"], [], "locations", "Choose at least one stock location."),
    (["SORT_BY_PRIORITY"], [("closed", 1)], "locations", "Closed Store is inactive"),
    (["SORT_BY_PRIORITY"], [("kadikoy", 1), ("kadikoy", 2)], "locations", "Kadıköy Store is listed twice."),
    (["SORT_BY_PRIORITY"], [("kadikoy", 1), ("ankara", 1)], "locations",
     "Kadıköy Store and Kızılay Store both have priority 1"),
    (["SORT_BY_PRIORITY"], [("kadikoy", 0)], "locations", "A priority must be a whole number from 1"),
    ([], [("kadikoy", 1)], "sort", "Choose exactly one way to sort"),
    (["SORT_BY_PRIORITY", "SORT_BY_DISTANCE"], [("kadikoy", 1)], "sort", "Choose exactly one way to sort"),
    (["SORT_BY_PRIORITY", "STORE_ONLY", "WAREHOUSE_ONLY"], [("kadikoy", 1)], "rules",
     "Choose stores only or warehouses only, not both."),
    (["SORT_BY_PRIORITY", "NEAREST_FIRST"], [("kadikoy", 1)], "rules", "Unknown rule 'NEAREST_FIRST'."),
    (["SORT_BY_DISTANCE"], [("kadikoy", 1), ("nowhere", 2)], "locations",
     "Sorting by distance needs coordinates, and these locations have none: Pop-up Store."),
    (["SORT_BY_PRIORITY", "WAREHOUSE_ONLY"], [("kadikoy", 1)], "rules", "none of the chosen locations is a warehouse"),
])
def test_the_editor_refuses_scenarios_that_cannot_work(world, rules, locations, field, message):
    with pytest.raises(ValidationFailed) as caught:
        _save(world, rules=rules, locations=locations)

    assert caught.value.field == field
    assert message in caught.value.message
    db.session.rollback()
    assert _scenarios() == []
    assert db.session.scalar(select(SettingChange)) is None


def test_a_location_that_does_not_exist_is_refused(world):
    with pytest.raises(ValidationFailed, match="Stock location 9999 does not exist."):
        scenarios.save_scenario(db.session, channel_id=world["web"].id, name="x", is_active=True,
                                rules=["SORT_BY_PRIORITY"], locations=[(9999, 1)], user_id=None)


def test_a_channel_has_at_most_one_active_scenario(world):
    first = _save(world, name="Istanbul first")
    _save(world, name="Spare", active=False)

    with pytest.raises(ValidationFailed) as caught:
        _save(world, name="Second")
    db.session.rollback()
    assert caught.value.field == "is_active"
    assert "Web already has an active scenario, 'Istanbul first'" in caught.value.message

    _save(world, name="Istanbul first", active=False, scenario_id=first.id)
    _save(world, name="Second")
    assert [(s.name, s.is_active) for s in _scenarios()] == [
        ("Istanbul first", False), ("Spare", False), ("Second", True)]


def test_editing_replaces_the_locations(world):
    scenario = _save(world, locations=[("kadikoy", 1), ("besiktas", 2)])

    _save(world, locations=[("besiktas", 1), ("warehouse", 2)], scenario_id=scenario.id)

    stored = _scenarios()[0]
    assert [(r.stock_location.erp_code, r.priority) for r in stored.locations] == [("IST-BSK", 1), ("WH-1", 2)]


def test_the_step_is_done_when_every_active_channel_has_an_active_scenario(world):
    _save(world, channel="web")
    record = _state()
    assert record.state == SetupStep.IN_PROGRESS
    assert record.note == "Channels without an active scenario: Mobile app."

    app_scenario = _save(world, channel="app", name="App default")
    assert _state().state == SetupStep.DONE  # the inactive channel needs none

    scenarios.delete_scenario(db.session, app_scenario.id, user_id=None)
    assert _state().state == SetupStep.NEEDS_ATTENTION


# plan_locations: the rules change the outcome

def _scenario_with(world, rules, keys=("kadikoy", "besiktas", "ankara", "warehouse", "nowhere")) -> Scenario:
    """An active web scenario over the given locations, in that priority order."""
    return _save(world, rules=rules, locations=[(key, n) for n, key in enumerate(keys, start=1)])


def test_without_filters_every_active_location_comes_in_priority_order(world):
    scenario = _scenario_with(world, ["SORT_BY_PRIORITY"], keys=("warehouse", "ankara", "kadikoy"))

    assert _names(scenarios.plan_locations(db.session, scenario)) == ["WH-1", "ANK-KZL", "IST-KDK"]


def test_select_by_quota_skips_locations_without_available_quota(world):
    with_quota = _scenario_with(world, ["SORT_BY_PRIORITY", "SELECT_BY_QUOTA"], keys=("besiktas", "kadikoy"))

    assert world["besiktas"].available_quota == 0
    assert _names(scenarios.plan_locations(db.session, with_quota)) == ["IST-KDK"]

    world["besiktas"].quota = 4  # one package's room frees up
    db.session.commit()
    assert _names(scenarios.plan_locations(db.session, with_quota)) == ["IST-BSK", "IST-KDK"]


def test_without_the_quota_rule_a_full_location_still_qualifies(world):
    scenario = _scenario_with(world, ["SORT_BY_PRIORITY"], keys=("besiktas", "kadikoy"))

    assert _names(scenarios.plan_locations(db.session, scenario)) == ["IST-BSK", "IST-KDK"]


def test_same_city_keeps_the_delivery_city_however_it_is_spelt(world):
    scenario = _scenario_with(world, ["SORT_BY_PRIORITY", "SAME_CITY"])

    assert _names(scenarios.plan_locations(db.session, scenario, city="ISTANBUL")) == ["IST-KDK", "IST-BSK", "POP-UP"]
    assert _names(scenarios.plan_locations(db.session, scenario, city="ankara")) == ["ANK-KZL"]
    assert scenarios.plan_locations(db.session, scenario, city="Izmir") == []
    with pytest.raises(ValidationFailed, match="give the city"):
        scenarios.plan_locations(db.session, scenario)


def test_store_only_and_warehouse_only_keep_one_kind(world):
    stores = _scenario_with(world, ["SORT_BY_PRIORITY", "STORE_ONLY"])
    assert "WH-1" not in _names(scenarios.plan_locations(db.session, stores))

    _save(world, name="Web default", active=False, scenario_id=stores.id)
    warehouses = _save(world, name="Warehouses", rules=["SORT_BY_PRIORITY", "WAREHOUSE_ONLY"],
                       locations=[("kadikoy", 1), ("warehouse", 2)])
    assert _names(scenarios.plan_locations(db.session, warehouses)) == ["WH-1"]


def test_sort_by_distance_puts_the_nearest_first_whatever_the_priority(world):
    scenario = _scenario_with(world, ["SORT_BY_DISTANCE"], keys=("ankara", "warehouse", "besiktas", "kadikoy"))

    from_kadikoy = scenarios.plan_locations(db.session, scenario, lat=KADIKOY[0], lon=KADIKOY[1])
    from_ankara = scenarios.plan_locations(db.session, scenario, lat=39.93, lon=32.86)

    assert _names(from_kadikoy) == ["IST-KDK", "IST-BSK", "WH-1", "ANK-KZL"]
    assert _names(from_ankara)[0] == "ANK-KZL"
    with pytest.raises(ValidationFailed, match="coordinates"):
        scenarios.plan_locations(db.session, scenario, city="Istanbul")


def test_a_location_deactivated_after_saving_is_never_planned(world):
    scenario = _scenario_with(world, ["SORT_BY_PRIORITY"], keys=("kadikoy", "ankara"))
    world["kadikoy"].is_active = False
    db.session.commit()

    assert _names(scenarios.plan_locations(db.session, scenario)) == ["ANK-KZL"]


def test_haversine_distance_is_right():
    # Istanbul (Sultanahmet) to Ankara (Kızılay): about 350 km as the crow flies.
    assert 345 < scenarios.haversine_km(41.0054, 28.9768, 39.9208, 32.8541) < 355
    assert scenarios.haversine_km(*KADIKOY, *KADIKOY) == 0


# The wizard page

def test_only_admins_open_the_step(client, make, auth_actions, world):
    make.user("clerk", stores=[world["kadikoy"]])
    auth_actions.login("clerk")

    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, data={"channel_id": str(world["web"].id), "name": "x"}).status_code == 403
    assert _scenarios() == []


def test_the_page_lists_channels_and_opens_the_editor(client, admin, world):
    page = client.get(PAGE).get_data(as_text=True)
    assert "Web" in page and "Mobile app" in page and "No active scenario" in page

    editor = client.get(f"{PAGE}?new={world['app'].id}", headers=HTMX).get_data(as_text=True)
    assert editor.lstrip().startswith('<div id="scenario-panel"')
    assert f'<option value="{world["app"].id}" selected>' in editor
    # A new scenario lists no location until asked (tests/test_scenario_editor.py); inactive ones never.
    assert "Kadıköy Store" not in editor and 'id="location-find"' in editor
    everything = client.get(f"{PAGE}?new={world['app'].id}&show_all=1", headers=HTMX).get_data(as_text=True)
    assert "Kadıköy Store" in everything and "Closed Store" not in everything


def _form(world, **extra) -> dict:
    """The editor's form as the browser posts it."""
    data = {"channel_id": str(world["web"].id), "name": "Istanbul stores", "is_active": "on",
            "rule": ["SELECT_BY_QUOTA"], "kind": "STORE_ONLY", "sort": "SORT_BY_PRIORITY",
            "location": [str(world["besiktas"].id), str(world["kadikoy"].id)],
            f"priority-{world['besiktas'].id}": "2", f"priority-{world['kadikoy'].id}": "1"}
    data.update(extra)
    return data


def test_admin_saves_a_scenario_from_the_editor(client, admin, world):
    response = client.post(PAGE, data=_form(world), headers=HTMX)

    assert response.status_code == 200
    assert "saved" in response.headers["HX-Trigger"]
    html = response.get_data(as_text=True)
    assert "Scenario: Istanbul stores" in html
    assert 'id="step-state" hx-swap-oob="true"' in html
    stored = _scenarios()[0]
    assert stored.rules == ["SELECT_BY_QUOTA", "STORE_ONLY", "SORT_BY_PRIORITY"]
    assert [r.stock_location.erp_code for r in stored.locations] == ["IST-KDK", "IST-BSK"]
    assert _state().state == SetupStep.IN_PROGRESS  # the Mobile app channel still has none


def test_the_editor_says_which_location_lacks_coordinates_and_saves_nothing(client, admin, world):
    data = _form(world, sort="SORT_BY_DISTANCE", kind="",
                 location=[str(world["kadikoy"].id), str(world["nowhere"].id)])

    response = client.post(PAGE, data=data, headers=HTMX)

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="scenario-locations-error" role="alert">Sorting by distance needs coordinates, and these locations ' \
           "have none: Pop-up Store." in html
    assert 'value="Istanbul stores"' in html  # the typed values stay
    assert f'id="location-{world["nowhere"].id}" name="location" value="{world["nowhere"].id}" checked' in html
    assert _scenarios() == []


def test_a_priority_that_is_not_a_number_is_refused(client, admin, world):
    response = client.post(PAGE, data=_form(world, **{f"priority-{world['kadikoy'].id}": "first"}))

    assert response.status_code == 422
    assert b"A priority must be a whole number" in response.data
    assert _scenarios() == []


def test_trying_a_scenario_on_an_address_shows_the_order(client, admin, world):
    scenario = _scenario_with(world, ["SORT_BY_DISTANCE", "SAME_CITY"], keys=("besiktas", "kadikoy", "ankara"))

    shown = client.get(f"{PAGE}/{scenario.id}/plan?city=istanbul&lat=40.99&lon=29.03", headers=HTMX)
    missing = client.get(f"{PAGE}/{scenario.id}/plan?city=istanbul", headers=HTMX)

    html = shown.get_data(as_text=True)
    assert html.index("Kadıköy Store") < html.index("Beşiktaş Store") and "Kızılay" not in html
    assert "give the delivery address&#39;s coordinates" in missing.get_data(as_text=True)


def test_removing_a_scenario(client, admin, world):
    scenario = _save(world)

    response = client.post(f"{PAGE}/{scenario.id}/delete", headers=HTMX)

    assert response.status_code == 200 and "removed" in response.headers["HX-Trigger"]
    assert _scenarios() == []
    assert db.session.scalars(select(SettingChange.action).order_by(SettingChange.id)).all() == ["create", "delete"]
