"""The scenario editor (setup step 11) lists the chosen stock locations first and finds the others by search and filters.

A brand with 100 stock locations no longer gets a page of 100 checkbox rows: only the chosen ones are listed
until the admin searches, picks a city or a type, or asks for all; ticks and priorities survive filtering.
"""
from __future__ import annotations

import re
from decimal import Decimal

import pytest

from portal.extensions import db
from portal.scenarios import service as scenarios
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.stores.models import StockLocation
from portal.sync.models import Channel

HTMX = {"HX-Request": "true"}
PAGE = "/setup/scenarios"
FIND = "/setup/scenarios/locations"
CITIES = ("İstanbul", "Ankara", "İzmir", "Bursa")


@pytest.fixture
def admin(make, auth_actions):
    """A logged-in admin."""
    user = make.user("root", role="admin")
    auth_actions.login("root")
    return user


@pytest.fixture
def brand(app):
    """One channel and 100 stock locations over four cities, every tenth a warehouse, one inactive."""
    channel = Channel(omnitron_id=1, name="Web", channel_type="web")
    locations = []
    for n in range(100):
        city = CITIES[n % 4]
        kind = "warehouse" if n % 10 == 0 else "store"
        locations.append(StockLocation(erp_code=f"LOC-{n:03d}", name=f"{city} {kind.title()} {n:03d}", city=city,
                                       kind=kind, max_quota=10, latitude=Decimal("41.0"), longitude=Decimal("29.0"),
                                       is_active=n != 99))
    db.session.add_all([channel, *locations])
    db.session.commit()
    return {"channel": channel, "locations": locations}


def rows(html: str) -> list[str]:
    """The names of the locations listed with a checkbox, in order."""
    return re.findall(r'aria-label="Allow ([^"]+)"', html)


def checked(html: str) -> list[str]:
    """The ids of the ticked locations."""
    return re.findall(r'name="location" value="(\d+)" checked', html)


def form(brand, *ticked, **extra) -> dict:
    """The editor's form as the browser posts it, with some locations ticked (priority = their order)."""
    data = {"channel_id": str(brand["channel"].id), "name": "Nearby", "is_active": "on", "sort": "SORT_BY_PRIORITY",
            "location": [str(loc.id) for loc in ticked]}
    for n, loc in enumerate(ticked, start=1):
        data[f"priority-{loc.id}"] = str(n)
    data.update(extra)
    return data


# --- the domain --------------------------------------------------------------------------------------------

def test_only_the_chosen_locations_are_listed_until_a_filter_asks_for_more(brand):
    everything = scenarios.list_stock_locations(db.session)
    a, b = brand["locations"][7], brand["locations"][3]
    choice = scenarios.location_choice(everything, {a.id: 2, b.id: 1}, scenarios.LocationFilter())
    assert [loc.id for loc in choice.chosen] == [b.id, a.id]  # by priority
    assert choice.matching == []
    assert choice.hidden == 99 - 2  # the inactive one is never offered
    assert choice.cities == ["Ankara", "Bursa", "İstanbul", "İzmir"]


@pytest.mark.parametrize(("wanted", "expected"), [
    (scenarios.LocationFilter(query="izmir"), 25),  # accents and dotted capitals do not matter
    (scenarios.LocationFilter(query="ISTANBUL store"), 20),  # every word must match
    (scenarios.LocationFilter(query="LOC-04"), 10),  # the ERP code
    (scenarios.LocationFilter(city="Istanbul"), 25),
    (scenarios.LocationFilter(kind="warehouse"), 10),
    (scenarios.LocationFilter(city="Izmir", kind="warehouse"), 5),
    (scenarios.LocationFilter(show_all=True), 99),
    (scenarios.LocationFilter(query="nothing like it"), 0),
])
def test_search_city_and_type_filter_the_rest(brand, wanted, expected):
    choice = scenarios.location_choice(scenarios.list_stock_locations(db.session), {}, wanted)
    assert len(choice.matching) == expected
    assert choice.hidden == 99 - expected
    assert all(wanted.matches(loc) for loc in choice.matching)


def test_a_chosen_location_is_listed_once_even_when_it_matches(brand):
    first = brand["locations"][0]
    choice = scenarios.location_choice(scenarios.list_stock_locations(db.session), {first.id: ""},
                                       scenarios.LocationFilter(city="İstanbul"))
    assert [loc.id for loc in choice.chosen] == [first.id]
    assert first.id not in [loc.id for loc in choice.matching] and len(choice.matching) == 24


# --- the page ------------------------------------------------------------------------------------------------

def test_a_new_scenario_lists_no_location_and_offers_the_finder(client, admin, brand):
    html = client.get(f"{PAGE}?new={brand['channel'].id}", headers=HTMX).get_data(as_text=True)
    assert rows(html) == []
    assert 'id="location-find"' in html and 'id="location-city"' in html and 'id="location-kind"' in html
    assert "99 more locations are not shown." in html and ">Show all</button>" in html
    # Enter in the search box presses the form's first submit button: Find, not Save.
    buttons = re.findall(r'<button type="submit"[^>]*>([^<]+)</button>', html)
    assert buttons.index("Find") < buttons.index("Save scenario")


def test_an_existing_scenario_lists_its_locations_first_and_nothing_else(client, admin, brand):
    a, b = brand["locations"][5], brand["locations"][6]
    client.post(PAGE, data=form(brand, a, b), headers=HTMX)
    [scenario] = scenarios.list_channels(db.session)[0].scenarios

    html = client.get(f"{PAGE}?edit={scenario.id}", headers=HTMX).get_data(as_text=True)
    assert rows(html) == [a.name, b.name]
    assert checked(html) == [str(a.id), str(b.id)]
    assert "97 more locations are not shown." in html


def test_filtering_keeps_the_ticked_locations_and_their_priorities_on_top(client, admin, brand):
    ticked = brand["locations"][2]  # an Izmir store
    response = client.post(FIND, data=form(brand, ticked, find="izmir", find_kind="warehouse"), headers=HTMX)

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="scenario-locations"')
    assert rows(html)[0] == ticked.name and checked(html) == [str(ticked.id)]
    assert f'name="priority-{ticked.id}" min="1" max="10000" step="1" class="priority-input" inputmode="numeric"\n' \
           f'                 value="1"' in html
    assert rows(html)[1:] == [loc.name for loc in sorted(brand["locations"], key=lambda loc: loc.name)
                              if loc.city == "İzmir" and loc.kind == "warehouse"]
    assert "Found (5)" in html and "Chosen (1)" in html


def test_show_all_lists_every_active_location(client, admin, brand):
    html = client.post(FIND, data=form(brand, show_all="1"), headers=HTMX).get_data(as_text=True)
    assert len(rows(html)) == 99 and "not shown" not in html
    assert brand["locations"][99].name not in rows(html)


def test_without_javascript_find_answers_the_whole_page_with_the_editor_as_filled_in(client, admin, brand):
    ticked = brand["locations"][1]
    response = client.post(FIND, data=form(brand, ticked, find="bursa", name="Half typed"))

    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in html
    assert 'value="Half typed"' in html and 'value="bursa"' in html
    assert rows(html)[0] == ticked.name and len(rows(html)) == 1 + 24
    assert scenarios.list_channels(db.session)[0].scenarios == []  # finding saves nothing


def test_saving_after_finding_stores_the_ticked_locations(client, admin, brand):
    a, b = brand["locations"][9], brand["locations"][4]
    response = client.post(PAGE, data=form(brand, a, b, find="whatever", find_city="Bursa"), headers=HTMX)
    assert response.status_code == 200
    [scenario] = scenarios.list_channels(db.session)[0].scenarios
    assert [row.stock_location_id for row in scenario.locations] == [a.id, b.id]


# --- one scenario for every channel ---------------------------------------------------------------------------

@pytest.fixture
def channels(brand):
    """Three more active channels and an inactive one besides the brand's Web channel."""
    more = [Channel(omnitron_id=10 + n, name=name, is_active=name != "Closed")
            for n, name in enumerate(("App", "Marketplace", "Call centre", "Closed"))]
    db.session.add_all(more)
    db.session.commit()
    return [brand["channel"], *more]


def test_the_editor_offers_to_copy_the_scenario_to_the_channels_without_one(client, admin, brand, channels):
    html = client.get(f"{PAGE}?new={brand['channel'].id}", headers=HTMX).get_data(as_text=True)
    assert "Also use it for the 3 other channels without an active scenario: App, Call centre, Marketplace" in html


def test_saving_with_copy_gives_every_uncovered_active_channel_the_same_scenario(client, admin, brand, channels):
    a, b = brand["locations"][3], brand["locations"][8]
    response = client.post(PAGE, data=form(brand, a, b, copy_to_uncovered="on"), headers=HTMX)

    assert response.status_code == 200
    assert "copied to 3 more channels: App, Call centre, Marketplace" in response.headers["HX-Trigger"]
    listed = {item.channel.name: item for item in scenarios.list_channels(db.session)}
    for name in ("Web", "App", "Marketplace", "Call centre"):
        active = listed[name].active_scenario
        assert active is not None and active.name == "Nearby", name
        assert [(row.stock_location_id, row.priority) for row in active.locations] == [(a.id, 1), (b.id, 2)]
    assert listed["Closed"].scenarios == []
    record = next(s.record for s in wizard.statuses(db.session) if s.step.key == "scenarios")
    assert record.state == SetupStep.DONE


def test_a_channel_that_has_a_scenario_keeps_it_and_an_inactive_scenario_is_not_copied(client, admin, brand, channels):
    app_channel = channels[1]
    client.post(PAGE, data={**form(brand, brand["locations"][1]), "channel_id": str(app_channel.id), "name": "Own"},
                headers=HTMX)
    client.post(PAGE, data=form(brand, brand["locations"][2], copy_to_uncovered="on", name="Shared"), headers=HTMX)
    listed = {item.channel.name: item for item in scenarios.list_channels(db.session)}
    assert [s.name for s in listed["App"].scenarios] == ["Own"]
    assert listed["Marketplace"].active_scenario.name == "Shared"

    inactive = form(brand, brand["locations"][2], copy_to_uncovered="on", name="Draft")
    del inactive["is_active"]
    client.post(PAGE, data={**inactive, "channel_id": str(app_channel.id)}, headers=HTMX)
    assert not any(s.name == "Draft" for item in scenarios.list_channels(db.session) for s in item.scenarios
                   if item.channel.id != app_channel.id)
