"""Fulfilment scenarios per channel (setup step 11): which stock locations may fulfil packages, and how one is picked.

A scenario lists the allowed stock locations with a priority (1 is tried first) and a set of rules:
SELECT_BY_QUOTA (only locations with available quota), SAME_CITY (only locations in the delivery city),
STORE_ONLY or WAREHOUSE_ONLY, and exactly one of SORT_BY_PRIORITY and SORT_BY_DISTANCE.
`plan_locations` applies those rules to an address; `save_scenario` refuses scenarios that could not work.
"""
from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal.db_types import utcnow
from portal.errors import NotFound, ValidationFailed
from portal.i18n import N_
from portal.scenarios.models import Scenario, ScenarioLocation
from portal.settings import service as settings
from portal.setup import service as wizard
from portal.stores.models import StockLocation
from portal.sync.models import Channel

STEP_KEY = "scenarios"
AUDIT_AREA = "scenario"

SELECT_BY_QUOTA = "SELECT_BY_QUOTA"
SAME_CITY = "SAME_CITY"
STORE_ONLY = "STORE_ONLY"
WAREHOUSE_ONLY = "WAREHOUSE_ONLY"
SORT_BY_PRIORITY = "SORT_BY_PRIORITY"
SORT_BY_DISTANCE = "SORT_BY_DISTANCE"

# rule -> (label, what it does), in the order rules are stored and shown. Plain English (marked with N_):
# screens translate them with _() where they show them.
RULES: dict[str, tuple[str, str]] = {
    SELECT_BY_QUOTA: (N_("Select by quota"),
                      N_("Only locations with available quota (max quota minus quota above 0).")),
    SAME_CITY: (N_("Same city"), N_("Only locations in the delivery address's city.")),
    STORE_ONLY: (N_("Stores only"), N_("Only stores, never warehouses.")),
    WAREHOUSE_ONLY: (N_("Warehouses only"), N_("Only warehouses, never stores.")),
    SORT_BY_PRIORITY: (N_("Sort by priority"), N_("Try the locations in the order of their priority (1 first).")),
    SORT_BY_DISTANCE: (N_("Sort by distance"), N_("Try the nearest location to the delivery address first.")),
}
KIND_RULES = {STORE_ONLY: "store", WAREHOUSE_ONLY: "warehouse"}
# The refusal when a kind rule keeps none of the chosen locations, one whole sentence per kind.
KIND_RULE_EMPTY = {
    STORE_ONLY: N_("%(rule)s leaves nothing: none of the chosen locations is a store."),
    WAREHOUSE_ONLY: N_("%(rule)s leaves nothing: none of the chosen locations is a warehouse."),
}
SORT_RULES = (SORT_BY_PRIORITY, SORT_BY_DISTANCE)
MAX_PRIORITY = 10000
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class ChannelScenarios:
    """A channel with its scenarios, for the scenarios page."""

    channel: Channel
    scenarios: list[Scenario]

    @property
    def active_scenario(self) -> Scenario | None:
        """The channel's active scenario, if it has one."""
        return next((s for s in self.scenarios if s.is_active), None)


def rule_label(rule: str) -> str:
    """A rule's label in the current locale, or the rule itself when unknown."""
    return _(RULES[rule][0]) if rule in RULES else rule


def list_channels(session: Session) -> list[ChannelScenarios]:
    """Every channel (active first) with its scenarios (active first)."""
    channels = list(session.scalars(select(Channel).order_by(Channel.is_active.desc(), Channel.name)))
    scenarios = session.scalars(select(Scenario).options(selectinload(Scenario.locations))
                                .order_by(Scenario.is_active.desc(), Scenario.name, Scenario.id))
    by_channel: dict[int, list[Scenario]] = {}
    for scenario in scenarios:
        by_channel.setdefault(scenario.channel_id, []).append(scenario)
    return [ChannelScenarios(channel, by_channel.get(channel.id, [])) for channel in channels]


def list_stock_locations(session: Session) -> list[StockLocation]:
    """Every stock location a scenario could use, active first, by name."""
    return list(session.scalars(select(StockLocation).order_by(StockLocation.is_active.desc(), StockLocation.name)))


@dataclass(frozen=True)
class LocationFilter:
    """What the scenario editor's location list shows besides the chosen locations: a search, a city, a kind.

    With none of them (and not show_all), only the chosen locations are listed.
    """

    query: str = ""
    city: str = ""
    kind: str = ""  # "store", "warehouse" or "" for both
    show_all: bool = False

    @property
    def active(self) -> bool:
        """True when the list shows more than the chosen locations."""
        return bool(self.query.strip() or self.city or self.kind or self.show_all)

    def matches(self, location: StockLocation) -> bool:
        """True when the location passes the search (name, ERP code or city), the city and the kind."""
        if self.kind and location.kind != self.kind:
            return False
        if self.city and normalise_city(location.city) != normalise_city(self.city):
            return False
        words = normalise_city(self.query).split()
        haystack = normalise_city(f"{location.name} {location.erp_code} {location.city}")
        return all(word in haystack for word in words)


@dataclass(frozen=True)
class LocationChoice:
    """The editor's location list: the chosen locations first, then the others the filter lets through."""

    chosen: list[StockLocation]
    matching: list[StockLocation]
    hidden: int  # offerable locations neither chosen nor shown
    cities: list[str]


def location_choice(locations: list[StockLocation], chosen: dict[int, object], wanted: LocationFilter) -> LocationChoice:
    """Split the stock locations for the editor: chosen ones (by priority, then name), then the matching rest.

    Inactive locations are offered only when chosen (saving then says they must go). `chosen` maps a location
    id to its priority (or None/"" when it has none yet).
    """
    def priority(location: StockLocation) -> tuple[int, str]:
        raw = chosen.get(location.id)
        value = int(raw) if isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit()) else MAX_PRIORITY + 1
        return value, location.name
    picked = sorted((loc for loc in locations if loc.id in chosen), key=priority)
    offerable = [loc for loc in locations if loc.id not in chosen and loc.is_active]
    matching = [loc for loc in offerable if wanted.active and wanted.matches(loc)]
    cities: dict[str, str] = {}  # "İstanbul" and "Istanbul" are one city: the first spelling names it
    for loc in locations:
        if loc.city and loc.is_active:
            cities.setdefault(normalise_city(loc.city), loc.city)
    return LocationChoice(picked, matching, len(offerable) - len(matching), [cities[k] for k in sorted(cities)])


def get_scenario(session: Session, scenario_id: int) -> Scenario:
    """One scenario; raises NotFound."""
    scenario = session.get(Scenario, scenario_id)
    if scenario is None:
        raise NotFound(_("No scenario with id %(id)s.", id=scenario_id))
    return scenario


def clean_rules(rules: object) -> list[str]:
    """The rules, checked and in their canonical order; raises ValidationFailed."""
    if rules is None:
        rules = []
    if not isinstance(rules, (list, tuple, set)) or not all(isinstance(r, str) for r in rules):
        raise ValidationFailed(_("Rules must be a list of rule names."), field="rules")
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise ValidationFailed(_("Unknown rule %(rule)s.", rule=repr(unknown[0])), field="rules")
    chosen = set(rules)
    if STORE_ONLY in chosen and WAREHOUSE_ONLY in chosen:
        raise ValidationFailed(_("Choose stores only or warehouses only, not both."), field="rules")
    if len(chosen & set(SORT_RULES)) != 1:
        raise ValidationFailed(_("Choose exactly one way to sort: by priority or by distance."), field="sort")
    return [r for r in RULES if r in chosen]


def _clean_locations(session: Session, locations: object) -> list[tuple[StockLocation, int]]:
    """[(stock location, priority)] from [(id, priority or None)], ordered by priority; raises ValidationFailed.

    Locations without a priority come after the others, in the order given.
    """
    if not isinstance(locations, (list, tuple)) or not locations:
        raise ValidationFailed(_("Choose at least one stock location."), field="locations")
    ids: list[int] = []
    priorities: list[int | None] = []
    for item in locations:
        location_id, priority = item if isinstance(item, (list, tuple)) and len(item) == 2 else (item, None)
        if isinstance(location_id, bool) or not isinstance(location_id, int):
            raise ValidationFailed(_("Stock locations must be given by id."), field="locations")
        if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)
                                     or not 1 <= priority <= MAX_PRIORITY):
            raise ValidationFailed(_("A priority must be a whole number from 1 to %(max)s.", max=MAX_PRIORITY),
                                   field="locations")
        ids.append(location_id)
        priorities.append(priority)
    found = {row.id: row for row in session.scalars(select(StockLocation).where(StockLocation.id.in_(ids)))}
    seen: dict[int, StockLocation] = {}
    taken: dict[int, StockLocation] = {}
    for location_id, priority in zip(ids, priorities, strict=True):
        location = found.get(location_id)
        if location is None:
            raise ValidationFailed(_("Stock location %(id)s does not exist.", id=location_id),
                                   field="locations")
        if location_id in seen:
            raise ValidationFailed(_("%(location)s is listed twice.", location=location.name), field="locations")
        if not location.is_active:
            raise ValidationFailed(_("%(location)s is inactive and cannot fulfil packages.", location=location.name),
                                   field="locations")
        if priority is not None and priority in taken:
            raise ValidationFailed(_("%(first)s and %(second)s both have priority %(priority)s; give each location "
                                     "its own priority.", first=taken[priority].name, second=location.name,
                                     priority=priority), field="locations")
        seen[location_id] = location
        if priority is not None:
            taken[priority] = location
    given = sorted((p, found[i]) for i, p in zip(ids, priorities, strict=True) if p is not None)
    rest = [found[i] for i, p in zip(ids, priorities, strict=True) if p is None]
    ordered = [location for _priority, location in given] + rest
    # Stored priorities are 1..n in the chosen order, whatever numbers were typed.
    return [(location, n) for n, location in enumerate(ordered, start=1)]


def _check_rules_fit(rules: list[str], locations: list[StockLocation]) -> None:
    """Refuse rules that the chosen locations cannot satisfy; raises ValidationFailed."""
    if SORT_BY_DISTANCE in rules:
        lacking = [loc.name for loc in locations if loc.latitude is None or loc.longitude is None]
        if lacking:
            raise ValidationFailed(_("Sorting by distance needs coordinates, and these locations have none: "
                                     "%(names)s.", names=", ".join(lacking)), field="locations")
    for rule, kind in KIND_RULES.items():
        if rule in rules and not any(loc.kind == kind for loc in locations):
            raise ValidationFailed(_(KIND_RULE_EMPTY[rule], rule=rule_label(rule)), field="rules")


def save_scenario(session: Session, *, channel_id: object, name: object, is_active: bool, rules: object,
                  locations: object, scenario_id: int | None = None, user_id: int | None) -> Scenario:
    """Create or update a scenario; at most one active scenario per channel.

    locations: [(stock_location_id, priority or None)]. Raises ValidationFailed or NotFound; nothing is
    saved then.
    """
    scenario = get_scenario(session, scenario_id) if scenario_id is not None else None
    if isinstance(channel_id, bool) or not isinstance(channel_id, int):
        raise ValidationFailed(_("Choose a channel."), field="channel_id")
    # Locking the channel row makes two admins activating scenarios of one channel take turns (PostgreSQL).
    channel = session.scalar(select(Channel).where(Channel.id == channel_id).with_for_update())
    if channel is None:
        raise ValidationFailed(_("Channel %(id)s does not exist.", id=channel_id), field="channel_id")
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed(_("Give the scenario a name."), field="name")
    name = name.strip()
    if len(name) > 120:
        raise ValidationFailed(_("The name is too long (at most 120 characters)."), field="name")
    rules = clean_rules(rules)
    chosen = _clean_locations(session, locations)
    _check_rules_fit(rules, [location for location, _priority in chosen])
    if is_active:
        other = session.scalar(select(Scenario).where(
            Scenario.channel_id == channel.id, Scenario.is_active.is_(True),
            Scenario.id != (scenario.id if scenario is not None else -1)))
        if other is not None:
            raise ValidationFailed(_("%(channel)s already has an active scenario, %(scenario)s. Deactivate it first, "
                                     "or save this one as inactive.", channel=channel.name, scenario=repr(other.name)),
                                   field="is_active")

    created = scenario is None
    if scenario is None:
        scenario = Scenario(channel_id=channel.id, name=name)
        session.add(scenario)
    scenario.channel_id = channel.id
    scenario.name = name
    scenario.is_active = bool(is_active)
    scenario.rules = rules
    scenario.updated_at = utcnow()
    existing = {row.stock_location_id: row for row in scenario.locations}
    wanted = {location.id: priority for location, priority in chosen}
    for location_id, row in existing.items():
        if location_id not in wanted:
            scenario.locations.remove(row)
    for location, priority in chosen:
        kept = existing.get(location.id)
        if kept is None:
            scenario.locations.append(ScenarioLocation(stock_location=location, priority=priority))
        else:
            kept.priority = priority
    settings.audit(session, f"{channel.name}: {name}"[:80], user_id=user_id, area=AUDIT_AREA,
                   action="create" if created else "update")
    session.flush()
    refresh_step(session, user_id=user_id)
    session.commit()
    return scenario


def copy_to_uncovered(session: Session, scenario: Scenario, *, user_id: int | None) -> list[Channel]:
    """Give every other active channel without an active scenario a copy of this active scenario.

    The copies have the same name, rules and locations (with their priorities), so a brand whose channels
    all fulfil alike sets step 11 up in one save. Returns the channels that got a copy; none when the scenario
    is inactive. Raises ValidationFailed (as save_scenario) when a copy cannot be saved.
    """
    if not scenario.is_active:
        return []
    covered = set(session.scalars(select(Scenario.channel_id).where(Scenario.is_active.is_(True))))
    channels = list(session.scalars(select(Channel).where(Channel.is_active.is_(True)).order_by(Channel.name)))
    rules = list(scenario.rules or [])
    locations = [(row.stock_location_id, row.priority) for row in scenario.locations]
    copied = []
    for channel in channels:
        if channel.id not in covered:
            save_scenario(session, channel_id=channel.id, name=scenario.name, is_active=True, rules=rules,
                          locations=locations, user_id=user_id)
            copied.append(channel)
    return copied


def delete_scenario(session: Session, scenario_id: int, *, user_id: int | None) -> None:
    """Remove a scenario, with an audit row. Raises NotFound."""
    scenario = get_scenario(session, scenario_id)
    channel = session.get(Channel, scenario.channel_id)
    settings.audit(session, f"{channel.name if channel else scenario.channel_id}: {scenario.name}"[:80],
                   user_id=user_id, area=AUDIT_AREA, action="delete")
    session.delete(scenario)
    session.flush()
    refresh_step(session, user_id=user_id)
    session.commit()


def refresh_step(session: Session, *, user_id: int | None) -> None:
    """Step 11 is done when every active channel has an active scenario (not committed)."""
    channels = list(session.scalars(select(Channel).where(Channel.is_active.is_(True)).order_by(Channel.name)))
    covered = set(session.scalars(select(Scenario.channel_id).where(Scenario.is_active.is_(True))))
    missing = [c.name for c in channels if c.id not in covered]
    if not channels:
        note = _("There are no active channels yet: copy the channels from Omnitron first (step 6).")
    else:
        note = _("Channels without an active scenario: %(names)s.", names=", ".join(missing)) if missing else ""
    wizard.settle(session, STEP_KEY, bool(channels) and not missing, user_id=user_id, note=note)


def normalise_city(name: str | None) -> str:
    """A city name for comparison: no accents, dotless i as i, case-folded ("İstanbul" == "istanbul")."""
    decomposed = unicodedata.normalize("NFKD", (name or "").strip())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return plain.replace("ı", "i").casefold()


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points, in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def distance_km(location: StockLocation, lat: float | None, lon: float | None) -> float | None:
    """How far a location is from a point, or None when either has no coordinates."""
    if lat is None or lon is None or location.latitude is None or location.longitude is None:
        return None
    return haversine_km(float(location.latitude), float(location.longitude), lat, lon)


def plan_locations(session: Session, scenario: Scenario, city: str | None = None, lat: float | None = None,
                   lon: float | None = None) -> list[StockLocation]:
    """The stock locations that may fulfil a package to this address, in the order to try them.

    Inactive locations never qualify. SELECT_BY_QUOTA keeps locations whose available quota
    (max_quota - quota) is above 0; SAME_CITY keeps locations in `city`; STORE_ONLY / WAREHOUSE_ONLY keep
    one kind. SORT_BY_DISTANCE orders by distance from (lat, lon), priority breaking ties, with locations
    lacking coordinates last; otherwise the order is the priority. Raises ValidationFailed when a rule
    needs a city or coordinates that were not given.
    """
    rules = set(scenario.rules or [])
    if SAME_CITY in rules and not (city or "").strip():
        raise ValidationFailed(_("This scenario keeps to the delivery city; give the city."), field="city")
    if SORT_BY_DISTANCE in rules and (lat is None or lon is None):
        raise ValidationFailed(_("This scenario sorts by distance; give the delivery address's coordinates."),
                               field="lat")
    rows = session.scalars(select(ScenarioLocation).where(ScenarioLocation.scenario_id == scenario.id)
                           .order_by(ScenarioLocation.priority))
    wanted_city = normalise_city(city)
    candidates: list[tuple[StockLocation, int]] = []
    for row in rows:
        location = row.stock_location
        if not location.is_active:
            continue
        if any(rule in rules and location.kind != kind for rule, kind in KIND_RULES.items()):
            continue
        if SELECT_BY_QUOTA in rules and location.max_quota - location.quota <= 0:
            continue
        if SAME_CITY in rules and normalise_city(location.city) != wanted_city:
            continue
        candidates.append((location, row.priority))
    if SORT_BY_DISTANCE in rules:
        def by_distance(item: tuple[StockLocation, int]) -> tuple[bool, float, int]:
            """Nearest first; no coordinates last; priority breaks ties."""
            km = distance_km(item[0], lat, lon)
            return km is None, km if km is not None else 0.0, item[1]
        candidates.sort(key=by_distance)
    else:
        candidates.sort(key=lambda item: item[1])
    return [location for location, _priority in candidates]
