"""Order import: fetch the orders ORDER_FILTERING chooses from Omnitron and turn each into a package.

For every order not imported yet (packages.omnitron_order_id is unique, so importing twice creates
nothing) the import makes a Customer, a Package in the vendor's initial state (Waiting) with its
items and barcodes, an audit row, and the package.created event, all in one transaction per page.

Where the package goes:
- click & collect (delivery_type in_store): the pickup store named by its erp_code;
- cargo: the first stock location plan_locations() gives for the channel's active scenario, with the
  address's city and coordinates. The chosen location's quota goes up by one (it counts the
  packages a location has still to pack, see portal.stores.quota; SELECT_BY_QUOTA scenarios stop at
  max_quota, and packing or cancelling the package frees the place again).
An order that cannot be placed (channel not copied, no active scenario, no location fits, the pickup
store unknown or inactive, an address without what the scenario needs) is skipped, never half-made:
it is counted per reason in the run's summary, with a few examples. Skipped orders are not retried
by later runs (they start after the newest change already read); once the cause is fixed, a full
run ("Fetch all again", or the job parameter full=1) reads every order from the start date again,
and only the ones still missing become packages. An order whose data is unusable (no items, no
phone, ...) counts as failed.

Addresses without coordinates: when the scenario sorts by distance and the order's address has no
latitude/longitude, the import asks step 9's geocoding provider (GEOLOCATION_DISCOVERY, Google Maps or
Yandex Maps) for the coordinates of the address's district, township, city and country (not the street
line: the customer's street is not sent out, and a township is close enough to pick the nearest store).
Each distinct address is asked once per run (a bounded cache, _Locator), and only when some location
of the scenario fits at all. The coordinates serve the planning only; nothing stores them. An address the
provider cannot find is skipped (address_not_found); when geocoding is not set up, or the provider itself
fails (key refused, quota, timeout, unreachable, server error), the order is skipped with the provider's
reason and the run asks the provider nothing more: every later such order is skipped with that reason.

Incremental and resumable: orders are read oldest change first (ordering=modified_date), and after
each committed page the run stores its cursor: the newest modified_date read and the order ids read
at exactly that moment. The next run asks for modified_date >= cursor and leaves out those ids, so
it reads only newer orders; a run killed midway is carried on by the next one from its last page.
A change of the filter (statuses, channels, start date, test orders) starts again from the start date.

The run lifecycle (queueing, claim token, heartbeat, failing, stale takeover) is portal.runs'; this module
registers the "order_import" kind, whose step is run_import.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db_types import utcnow
from portal.errors import DomainError, ValidationFailed
from portal.geolocation.client import Coordinates, Geocoder, GeocodingError
from portal.geolocation.service import saved_geocoder
from portal.i18n import N_, order_language
from portal.omnitron import OmnitronClient, OmnitronError
from portal.omnitron.errors import OmnitronNotFound
from portal.orders.models import OrderImportRun
from portal.outbox import service as outbox
from portal.packages import events
from portal.packages.models import Customer, Package, PackageItem, PackageLog
from portal.packages.states import DeliveryType, State
from portal.runs import service as runs
from portal.scenarios.models import Scenario
from portal.scenarios.service import SORT_BY_DISTANCE, plan_locations
from portal.settings import service as settings
from portal.setup import service as wizard
from portal.stores.models import StockLocation
from portal.sync import service as sync
from portal.sync.models import Channel

log = logging.getLogger(__name__)

KIND = "order_import"
STEP_KEY = "order_filtering"
MAX_PROBLEMS = 20
IMPORT_COMMAND = "import-order"
# Distinct addresses a run remembers the coordinates of (a few hundred bytes each): enough for a brand's
# townships, and memory stays flat however many orders a run reads.
GEOCODE_CACHE_SIZE = 2048
# Geocoding failures that belong to one address; any other kind (key refused, quota, timeout, unreachable,
# server error, an answer that is not geocoding) is the provider's, and stops the run asking it.
ADDRESS_FAILURES = frozenset({GeocodingError.NOT_FOUND, GeocodingError.BAD_REQUEST})

# Why an order was skipped: code -> what an admin should do about it (English, marked with N_: screens
# translate it with _() where they show it).
SKIP_REASONS: dict[str, str] = {
    "channel_not_copied": N_("Its channel has not been copied from Omnitron (step 6)."),
    "no_active_scenario": N_("Its channel has no active scenario (step 11)."),
    "no_location_fits": N_("No stock location of the channel's scenario fits (rules, city, quota)."),
    "address_incomplete": N_("The scenario needs the delivery city or coordinates, and the address has none."),
    "geocoding_not_configured": N_("The address has no coordinates and geocoding is not set up (step 9)."),
    "geocoding_failed": N_("The address has no coordinates and the geocoding provider failed (key refused, quota, "
                           "unreachable); the run stopped asking it. Fix step 9, then fetch all again."),
    "address_not_found": N_("The address has no coordinates and the geocoding provider found no place for it."),
    "pickup_store_unknown": N_("Its click & collect store is not in the portal (copy the stores, step 5)."),
    "pickup_store_inactive": N_("Its click & collect store is inactive."),
}

# The same codes in a few words, for the run's one-line summary ("3 no active scenario").
SKIP_LABELS: dict[str, str] = {
    "channel_not_copied": N_("channel not copied"),
    "no_active_scenario": N_("no active scenario"),
    "no_location_fits": N_("no location fits"),
    "address_incomplete": N_("address incomplete"),
    "geocoding_not_configured": N_("geocoding not configured"),
    "geocoding_failed": N_("geocoding failed"),
    "address_not_found": N_("address not found"),
    "pickup_store_unknown": N_("pickup store unknown"),
    "pickup_store_inactive": N_("pickup store inactive"),
}


class ImportAlreadyRunning(DomainError):
    """An import is already queued or running."""

    code = "import_running"
    http_status = 409


class _Skip(Exception):
    """The order cannot be placed; args[0] is a SKIP_REASONS code, args[1] the detail."""


class _Unusable(Exception):
    """The order's data cannot make a package; args[0] says why."""


@dataclass
class ImportSummary:
    """What a run did: how many orders it read and what became of them."""

    run_id: int
    status: str
    fetched: int = 0
    created: int = 0
    already_imported: int = 0
    skipped: int = 0
    failed: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    error: str = ""

    @classmethod
    def of(cls, run: OrderImportRun) -> ImportSummary:
        """The summary of a recorded run."""
        return cls(run.id, run.status, run.fetched, run.created, run.already_imported, run.skipped, run.failed,
                   dict(run.skip_reasons or {}), list(run.problems or []), run.error or "")

    def text(self) -> str:
        """One sentence for a job's result or a toast."""
        return summary_text(self)


def _skip_label(code: str) -> str:
    """A skip reason code in a few words, translated (an unknown code as its words)."""
    return _(SKIP_LABELS[code]) if code in SKIP_LABELS else code.replace("_", " ")


def summary_text(run: OrderImportRun | ImportSummary) -> str:
    """The sentence summing up a run (or an ImportSummary): fetched, created, already imported, skipped, failed."""
    counts = {"fetched": run.fetched, "created": run.created, "already": run.already_imported,
              "skipped": run.skipped, "failed": run.failed}
    if run.skipped:
        reasons = ", ".join(_("%(count)s %(reason)s", count=n, reason=_skip_label(code)) for code, n in sorted(
            (run.skip_reasons or {}).items(), key=lambda item: -item[1]))
        text = _("Fetched %(fetched)s order(s): %(created)s package(s) created, %(already)s already imported, "
                 "%(skipped)s skipped (%(reasons)s), %(failed)s failed.", reasons=reasons, **counts)
    else:
        text = _("Fetched %(fetched)s order(s): %(created)s package(s) created, %(already)s already imported, "
                 "0 skipped, %(failed)s failed.", **counts)
    if run.status == OrderImportRun.FAILED and run.error:
        text = _("Stopped: %(error)s %(summary)s", error=run.error.splitlines()[0], summary=text)
    return text


# The filter ------------------------------------------------------------------------------------------------


def order_filter(session: Session) -> dict:
    """The saved ORDER_FILTERING value. Raises ValidationFailed when it has not been saved (step 8)."""
    value = settings.get_value(session, settings.ORDER_FILTERING)
    if not isinstance(value, dict) or not value.get("statuses"):
        raise ValidationFailed(_("Save the order filtering (step 8) first: it says which orders to fetch."),
                               field="order_filtering")
    return value


def filter_key(value: dict) -> str:
    """A digest of the fields that choose orders (not page_size): a cursor holds only for the same filter."""
    chosen = {k: value.get(k) for k in ("statuses", "channels", "start_date", "exclude_test_orders")}
    return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()


def created_from(value: dict) -> str | None:
    """start_date as the UTC moment its day begins where the brand is (DISPLAY_TIMEZONE), or None."""
    start = value.get("start_date")
    if not start:
        return None
    zone = ZoneInfo(current_app.config.get("DISPLAY_TIMEZONE") or "UTC")
    moment = datetime.combine(date.fromisoformat(start), time(0, 0), tzinfo=zone).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_client(session: Session) -> OmnitronClient:
    """A client for the configured Omnitron with the stored login. Raises ValidationFailed."""
    return sync.make_client(session)  # the same login and settings as the syncs


# Starting runs ---------------------------------------------------------------------------------------------



def latest_run(session: Session) -> OrderImportRun | None:
    """The newest run, or None."""
    return session.scalars(select(OrderImportRun).order_by(OrderImportRun.id.desc()).limit(1)).first()


def recent_runs(session: Session, limit: int = 5) -> list[OrderImportRun]:
    """The last few runs, newest first."""
    return list(session.scalars(select(OrderImportRun).order_by(OrderImportRun.id.desc()).limit(limit)))


def start_run(session: Session, *, user_id: int | None, trigger: str = "manual", full: bool = False,
              now: datetime | None = None) -> OrderImportRun:
    """Record a queued run (not yet on the queue). Raises ValidationFailed and ImportAlreadyRunning.

    A run still marked active whose worker went silent is marked failed; the new run carries on from
    the newest cursor anyway, as every run does.
    """
    value = order_filter(session)
    make_client(session).close()  # refuses now, with a clear message, when no login is saved
    now = now or utcnow()
    wizard.lock_step(session, STEP_KEY, now)
    previous = latest_run(session)
    if previous is not None:
        session.refresh(previous)
    if runs.is_live(previous):
        if not runs.is_stale(previous, now):
            session.rollback()
            raise ImportAlreadyRunning(_("An order import is already running (run #%(id)s). Wait for it to "
                                         "finish; this page follows its progress.", id=previous.id))
        note = _("%(why)s; the next run carried on from its last page.", why=runs.stale_reason(previous))
        runs.take_over(previous, ((previous.error + "\n") if previous.error else "") + note, now)
    run = OrderImportRun(status=OrderImportRun.QUEUED, trigger=trigger, full=full, task_id=runs.new_token(),
                         filter_key=filter_key(value), cursor={}, progress={}, skip_reasons={}, problems=[],
                         error="", started_by_id=user_id, created_at=now)
    session.add(run)
    session.commit()
    return run


def execute(session: Session, *, user_id: int | None, full: bool = False) -> OrderImportRun:
    """Start an import on the job queue; returns the run (already finished when the queue is immediate).

    Raises ValidationFailed and ImportAlreadyRunning.
    """
    return runs.queue(session, KIND, start_run(session, user_id=user_id, full=full))


def import_orders(session: Session, *, user_id: int | None = None, full: bool = False, trigger: str = "job",
                  client: OmnitronClient | None = None) -> ImportSummary:
    """Fetch and import the orders ORDER_FILTERING chooses, here and now; returns the summary.

    Raises ValidationFailed (no filter or login) and ImportAlreadyRunning; a failure while running
    (Omnitron down, ...) ends the run as failed and shows in the summary's status and error.
    """
    run = start_run(session, user_id=user_id, trigger=trigger, full=full)
    finished = run_import(session, run.id, token=run.task_id, client=client)
    return ImportSummary.of(finished)


# Running ---------------------------------------------------------------------------------------------------


def _start_cursor(session: Session, run: OrderImportRun) -> dict:
    """Where a run starts: nothing for a full run, else the newest cursor a run with the same filter stored."""
    if run.full:
        return {}
    # Newest run first; one that stopped before its first page stored no cursor, so look further back.
    for cursor in session.scalars(select(OrderImportRun.cursor).where(
            OrderImportRun.filter_key == run.filter_key, OrderImportRun.id != run.id)
            .order_by(OrderImportRun.id.desc())):
        if cursor:
            return dict(cursor)
    return {}


@dataclass
class _Tally:
    """Counters of a run, saved with every page."""

    fetched: int = 0
    created: int = 0
    already_imported: int = 0
    skipped: int = 0
    failed: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        """Keep a few example lines for the summary."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(line[:300])

    def values(self) -> dict:
        """The columns to write."""
        return {"fetched": self.fetched, "created": self.created, "already_imported": self.already_imported,
                "skipped": self.skipped, "failed": self.failed, "skip_reasons": dict(self.skip_reasons),
                "problems": list(self.problems), "progress": {"done": self.fetched}}


class _Locator:
    """Coordinates of addresses that came without them, from step 9's provider, for one run.

    Each distinct address is asked once (the answer, found or not, is remembered; the oldest answers are
    forgotten past max_addresses). After the provider itself fails, or when geocoding is not set up, it
    asks nothing more and every later address is skipped with that first reason.
    """

    def __init__(self, session: Session, config, max_addresses: int = GEOCODE_CACHE_SIZE):
        """Nothing asked yet; the saved provider and key are read when the first address needs them."""
        self.session = session
        self.config = config
        self.max_addresses = max_addresses
        self.geocoder: Geocoder | None = None
        self.stopped: tuple[str, str] | None = None  # (skip reason, detail) once the provider is out of use
        self.answers: OrderedDict[str, Coordinates | GeocodingError] = OrderedDict()

    def locate(self, address: str) -> Coordinates:
        """The coordinates of an address text. Raises _Skip when they cannot be had."""
        if self.stopped:
            raise _Skip(*self.stopped)
        key = " ".join(address.split()).casefold()
        answer = self.answers.get(key)
        if answer is not None:
            self.answers.move_to_end(key)
        else:
            answer = self._ask(address)
            self.answers[key] = answer
            if len(self.answers) > self.max_addresses:
                self.answers.popitem(last=False)
        if isinstance(answer, GeocodingError):
            raise _Skip("address_not_found", _coordinates_missing(answer.message))
        return answer

    def _ask(self, address: str) -> Coordinates | GeocodingError:
        """The provider's answer for one address (an address-level failure is an answer too). Raises _Skip."""
        if self.geocoder is None:
            try:
                self.geocoder = saved_geocoder(self.session, self.config)
            except (ValidationFailed, GeocodingError) as exc:
                self.stopped = ("geocoding_not_configured", _coordinates_missing(exc.message))
                raise _Skip(*self.stopped) from None
        try:
            return self.geocoder.geocode(address)
        except GeocodingError as exc:
            if exc.kind in ADDRESS_FAILURES:
                return exc
            log.warning("order import: %s failed (%s); no more geocoding in this run", self.geocoder.name, exc.kind)
            self.stopped = ("geocoding_failed", _coordinates_missing(
                _("%(error)s (the run stopped asking %(provider)s)", error=exc.message.rstrip("."),
                  provider=self.geocoder.name)))
            raise _Skip(*self.stopped) from None


def _coordinates_missing(reason: str) -> str:
    """The detail of a skip for want of coordinates, with the provider's (or the setting's) reason."""
    return _("could not find the address's coordinates: %(reason)s", reason=reason.rstrip("."))


class _Placer:
    """Finds each order's stock location; remembers channels, scenarios and stores for the run."""

    def __init__(self, session: Session, locator: _Locator | None = None):
        """Start with nothing remembered."""
        self.session = session
        self.locator = locator or _Locator(session, current_app.config)
        self.channels: dict[int, tuple[int, str] | None] = {}  # Omnitron channel id -> (channel id, name)
        self.scenarios: dict[int, int | None] = {}  # channel id -> active scenario id
        self.stores: dict[str, int | None] = {}  # erp_code -> stock location id

    def place(self, order: dict) -> tuple[StockLocation, str]:
        """(stock location, why it was chosen) for an order. Raises _Skip."""
        if order["delivery_type"] == DeliveryType.IN_STORE:
            code = order["pickup_erp_code"]
            if code not in self.stores:
                self.stores[code] = self.session.scalar(select(StockLocation.id).where(StockLocation.erp_code == code))
            location = self.session.get(StockLocation, self.stores[code]) if self.stores[code] else None
            if location is None:
                raise _Skip("pickup_store_unknown", _("store %(code)s is not in the portal", code=code))
            if not location.is_active:
                raise _Skip("pickup_store_inactive", _("store %(code)s is inactive", code=code))
            return location, _("click & collect at %(code)s", code=location.erp_code)
        channel_id = order["channel"]
        if channel_id not in self.channels:
            row = self.session.execute(select(Channel.id, Channel.name).where(Channel.omnitron_id == channel_id)).first()
            self.channels[channel_id] = tuple(row) if row else None
        channel = self.channels[channel_id]
        if channel is None:
            raise _Skip("channel_not_copied", _("channel #%(id)s is not in the portal", id=channel_id))
        if channel[0] not in self.scenarios:
            self.scenarios[channel[0]] = self.session.scalar(
                select(Scenario.id).where(Scenario.channel_id == channel[0], Scenario.is_active.is_(True)))
        scenario = self.session.get(Scenario, self.scenarios[channel[0]]) if self.scenarios[channel[0]] else None
        if scenario is None:
            raise _Skip("no_active_scenario", _("channel %(channel)s has no active scenario", channel=channel[1]))
        lat, lon, located_by = order["lat"], order["lon"], None
        if SORT_BY_DISTANCE in (scenario.rules or []) and (lat is None or lon is None) and order["address"]:
            # Only worth asking the provider when some location fits: plan at any point first (the point
            # changes the order of the locations, never which ones fit).
            try:
                fitting = plan_locations(self.session, scenario, order["city"], 0.0, 0.0)
            except ValidationFailed as exc:
                raise _Skip("address_incomplete", exc.message) from None
            if not fitting:
                raise _Skip("no_location_fits", _("scenario %(scenario)r has no location for %(city)s",
                                                  scenario=scenario.name, city=order["city"] or "?"))
            found = self.locator.locate(order["address"])
            lat, lon = found.lat, found.lng
            located_by = self.locator.geocoder.name if self.locator.geocoder else "?"
        try:
            candidates = plan_locations(self.session, scenario, order["city"], lat, lon)
        except ValidationFailed as exc:
            raise _Skip("address_incomplete", exc.message) from None
        if not candidates:
            raise _Skip("no_location_fits", _("scenario %(scenario)r has no location for %(city)s",
                                              scenario=scenario.name, city=order["city"] or "?"))
        if located_by is None:
            return candidates[0], _("scenario %(scenario)r of %(channel)s", scenario=scenario.name, channel=channel[1])
        return candidates[0], _("scenario %(scenario)r of %(channel)s (address located by %(provider)s)",
                                scenario=scenario.name, channel=channel[1], provider=located_by)


def _text(value: object, limit: int) -> str:
    """A trimmed string (numbers allowed), cut to the column's length."""
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    return str(value).strip()[:limit]


def _coordinate(value: object) -> float | None:
    """A coordinate from text or a number; None when absent or not a number."""
    if value == "" or not isinstance(value, (str, int, float)):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _place_name(value: object) -> str:
    """The name of a place given as {"name": ...} or as text."""
    return _text(value.get("name") if isinstance(value, dict) else value, 120)


def _object(value: object) -> dict:
    """A JSON object as it is; anything else (missing, text, a list) as an empty one."""
    return value if isinstance(value, dict) else {}


def address_text(address: dict) -> str:
    """What to geocode: the address's district, township, city and country, as far as it has them."""
    parts = (_place_name(address.get(part)) for part in ("district", "township", "city", "country"))
    return ", ".join(dict.fromkeys(part for part in parts if part))[:300]


def parse_order(order: object) -> dict:
    """The fields of an Omnitron order the import uses, checked. Raises _Unusable."""
    if not isinstance(order, dict) or isinstance(order.get("id"), bool) or not isinstance(order.get("id"), int):
        raise _Unusable(_("it has no id"))
    number = _text(order.get("number"), 60)
    if not number or len(number) > 38:
        raise _Unusable(_("its order number is missing or longer than 38 characters"))
    customer = _object(order.get("customer"))
    address = _object(order.get("shipping_address"))
    first = _text(customer.get("first_name") or address.get("first_name"), 80)
    last = _text(customer.get("last_name") or address.get("last_name"), 80)
    phone = _text(customer.get("phone_number") or address.get("phone_number"), 32)
    if not first or not phone:
        raise _Unusable(_("the customer's name or phone number is missing"))
    delivery = order.get("delivery_type")
    pickup = _object(order.get("pickup_store")) or None
    if delivery == DeliveryType.IN_STORE:
        if not pickup or not _text(pickup.get("erp_code"), 64):
            raise _Unusable(_("it is click & collect but names no pickup store"))
    elif delivery not in (DeliveryType.CARGO, None, ""):
        raise _Unusable(_("its delivery type %(type)r is unknown", type=delivery))
    channel = order.get("channel")
    if isinstance(channel, dict):
        channel = channel.get("id")
    if isinstance(channel, bool) or not isinstance(channel, int):
        raise _Unusable(_("it has no channel"))
    items = []
    for item in order.get("orderitem_set") or []:
        product = _object(item.get("product")) if isinstance(item, dict) else {}
        quantity = item.get("quantity", 1) if isinstance(item, dict) else None
        if (not isinstance(item, dict) or isinstance(item.get("id"), bool) or not isinstance(item.get("id"), int)
                or not _text(product.get("sku"), 64) or not _text(product.get("barcode"), 64)
                or isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1):
            raise _Unusable(_("an order item lacks its id, sku, barcode or quantity"))
        items.append({"order_item": item["id"], "sku": _text(product["sku"], 64),
                      "name": _text(product.get("name"), 160) or _text(product["sku"], 64),
                      "barcode": _text(product["barcode"], 64), "quantity": quantity})
    if not items:
        raise _Unusable(_("it has no items"))
    city = address.get("city")
    return {
        "id": order["id"], "number": number, "channel": channel,
        "delivery_type": DeliveryType.IN_STORE if delivery == DeliveryType.IN_STORE else DeliveryType.CARGO,
        "pickup_erp_code": _text(pickup.get("erp_code"), 64) if pickup else "",
        "first_name": first, "last_name": last, "phone": phone, "email": _text(customer.get("email"), 160),
        "city": _text(city.get("name") if isinstance(city, dict) else city, 80) or None,
        "lat": _coordinate(address.get("latitude")), "lon": _coordinate(address.get("longitude")),
        "address": address_text(address), "items": items,
        # Omnitron's orders carry the language the customer shopped in ("language_code": "tr-TR"); kept for SMS.
        "language": order_language(order.get("language_code") or order.get("language")),
    }


def _create_package(session: Session, order: dict, location: StockLocation, why: str,
                    user_id: int | None) -> Package:
    """The order's customer, package, items and audit row, and its package.created event (not committed)."""
    in_store = order["delivery_type"] == DeliveryType.IN_STORE
    customer = Customer(first_name=order["first_name"], last_name=order["last_name"], phone=order["phone"],
                        email=order["email"])
    now = utcnow()
    package = Package(number=f"{order['number']}-1", order_number=order["number"], stock_location=location,
                      customer=customer, state=State.WAITING.value, delivery_type=order["delivery_type"],
                      # Click & collect is handed over at the store; cargo leaves from a store or a warehouse.
                      delivery_from_store=in_store or location.kind == "store",
                      item_count=len(order["items"]), omnitron_order_id=order["id"], created_at=now, updated_at=now,
                      language=order.get("language", ""))
    for item in order["items"]:
        package.items.append(PackageItem(**item))
    package.logs.append(PackageLog(from_state=State.WAITING.value, to_state=State.WAITING.value,
                                   command=IMPORT_COMMAND, user_id=user_id,
                                   note=_("Imported from Omnitron order %(number)s (#%(id)s); %(why)s chose "
                                          "%(code)s.", number=order["number"], id=order["id"], why=why,
                                          code=location.erp_code)))
    session.add(package)
    # quota = quota + 1 in SQL, so a command packing in the same store at this moment loses no count; the
    # command engine lowers it again when the package is packed or cancelled (portal.stores.quota).
    location.quota = StockLocation.quota + 1
    session.flush()
    events.package_created(session, package)
    return package


def _import_page(session: Session, orders: list, tally: _Tally, placer: _Placer, user_id: int | None) -> None:
    """Import one page of orders into the session (not committed): each is created, skipped or counted."""
    ids = [o["id"] for o in orders if isinstance(o, dict) and isinstance(o.get("id"), int)]
    known = set(session.scalars(select(Package.omnitron_order_id).where(Package.omnitron_order_id.in_(ids)))) if ids else set()
    numbers = {f"{o.get('number')}-1" for o in orders if isinstance(o, dict)}
    taken = set(session.scalars(select(Package.number).where(Package.number.in_(numbers)))) if numbers else set()
    for raw in orders:
        tally.fetched += 1
        label = raw.get("number") if isinstance(raw, dict) else None
        try:
            order = parse_order(raw)
            if order["id"] in known:
                tally.already_imported += 1
                continue
            if f"{order['number']}-1" in taken:
                raise _Unusable(_("package number %(number)s-1 is already used by another package",
                                  number=order["number"]))
            location, why = placer.place(order)
        except _Unusable as exc:
            tally.failed += 1
            tally.note(_("Order %(number)s: failed, %(problem)s.", number=label or "?", problem=exc.args[0]))
            continue
        except _Skip as exc:
            reason, detail = exc.args
            tally.skipped += 1
            tally.skip_reasons[reason] = tally.skip_reasons.get(reason, 0) + 1
            tally.note(_("Order %(number)s: skipped, %(problem)s.", number=order["number"], problem=detail))
            continue
        _create_package(session, order, location, why, user_id)
        known.add(order["id"])
        taken.add(f"{order['number']}-1")
        tally.created += 1


def _save(session: Session, run_id: int, token: str, tally: _Tally, cursor: dict, *, done: bool = False) -> None:
    """Write the run's counters and cursor in the page's transaction (ending it when done), commit, send its events.

    Raises runs.Superseded (after rolling back) when this run no longer owns its record.
    """
    save = runs.finish if done else runs.save_progress
    save(session, OrderImportRun, run_id, token, **tally.values(), cursor=cursor)
    outbox.deliver_after_commit(session)


def _first_page(client: OmnitronClient, value: dict, modified_from: str | None, page_number: int):
    """One page of the filtered order list (None when the page is past the end)."""
    pages = client.orders(statuses=value["statuses"], channels=value.get("channels") or None,
                          created_from=created_from(value), modified_from=modified_from,
                          exclude_test=bool(value.get("exclude_test_orders", True)),
                          page_size=int(value.get("page_size") or 100), start_page=page_number)
    try:
        return next(pages, None)
    except OmnitronNotFound:
        if page_number > 1:
            return None  # the list shrank under us: there is nothing after this point
        raise
    finally:
        if isinstance(pages, Generator):
            pages.close()  # the client's pages are a generator: end it, and with it its HTTP answer


def _reload(session: Session, run_id: int) -> OrderImportRun:
    """A run as the database has it now. Raises LookupError when it is gone (runs are never deleted)."""
    run = session.get(OrderImportRun, run_id, populate_existing=True)
    if run is None:
        raise LookupError(f"order import run {run_id} does not exist")
    return run


def run_import(session: Session, run_id: int, *, token: str, client: OmnitronClient | None = None) -> OrderImportRun:
    """Carry out a recorded run: page by page, one transaction each, cursor saved with every page.

    Never raises for Omnitron or data problems: they end the run as failed, with the reason.
    """
    if not runs.claim(session, OrderImportRun, run_id, token):
        return _reload(session, run_id)
    run = _reload(session, run_id)
    user_id = run.started_by_id
    tally = _Tally()
    try:
        value = order_filter(session)
        if filter_key(value) != run.filter_key:
            # Saved again between queueing and running: the cursor belongs to the filter read now.
            run.filter_key = filter_key(value)
            session.commit()
        cursor = _start_cursor(session, run)
        own = client is None
        client = client or make_client(session)
        placer = _Placer(session)
        modified = cursor.get("modified")
        done_ids = set(cursor.get("ids") or [])
        page_number = 1
        try:
            while True:
                page = _first_page(client, value, modified, page_number)
                if page is None:
                    break
                fresh = [o for o in page.results
                         if not (isinstance(o, dict) and o.get("modified_date") == modified and o.get("id") in done_ids)]
                _import_page(session, fresh, tally, placer, user_id)
                dates = [o["modified_date"] for o in page.results
                         if isinstance(o, dict) and isinstance(o.get("modified_date"), str)]
                newest = max(dates, default=None)
                if newest is not None and (modified is None or newest > modified):
                    # The next request starts at this page's newest change; the orders read at exactly that
                    # moment come back with it and are left out by id.
                    modified, page_number = newest, 1
                    done_ids = {o["id"] for o in page.results if isinstance(o, dict) and o.get("modified_date") == newest}
                else:
                    # A page of orders all changed at the same moment: read on by page number.
                    done_ids |= {o["id"] for o in page.results if isinstance(o, dict) and "id" in o}
                    page_number += 1
                _save(session, run_id, token, tally, {"modified": modified, "ids": sorted(done_ids)} if modified else {})
                if page.next_page is None:
                    break
        finally:
            if own:
                client.close()
        _save(session, run_id, token, tally, {"modified": modified, "ids": sorted(done_ids)} if modified else {},
              done=True)
    except runs.Superseded:
        log.warning("order import %s was taken over by a newer run; stopping", run_id)
    except (OmnitronError, DomainError) as exc:
        session.rollback()
        runs.fail(session, KIND, run_id, token, exc.message)
    except Exception as exc:  # a bug or a database error must end the run, not leave it "running"
        session.rollback()
        log.exception("order import %s failed", run_id)
        detail = f"{exc.__class__.__name__}: {exc}"
        runs.fail(session, KIND, run_id, token, _("Unexpected error: %(error)s", error=detail)[:500])
    return _reload(session, run_id)


def _step(session: Session, run_id: int, token: str) -> None:
    """The "order_import" kind's step, run by the queue task."""
    run_import(session, run_id, token=token)


runs.register(runs.RunKind(KIND, OrderImportRun, step=_step))
