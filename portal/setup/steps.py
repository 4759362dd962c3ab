"""The 15 steps of the OMS basic setup (shared/seeds/oms-basic-setup.txt), in the vendor's order."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext

from portal.i18n import N_


@dataclass(frozen=True)
class Step:
    """A setup step: its number, key, title, what it does, the steps it needs first, and its page.

    `english_title` and `english_summary` are the plain English texts (marked with N_); `title` and `summary`
    give them in the request's language, so every page that shows a step shows it translated.
    """

    number: int
    key: str
    english_title: str
    english_summary: str
    endpoint: str
    depends_on: tuple[str, ...] = field(default_factory=tuple)
    vendor_key: str = ""  # the vendor's name of the setting the step saves, shown as a secondary label

    @property
    def title(self) -> str:
        """The step's title in the request's language."""
        return gettext(self.english_title)

    @property
    def summary(self) -> str:
        """What the step does, in the request's language."""
        return gettext(self.english_summary)

    @property
    def previous(self) -> Step | None:
        """The step before this one in the vendor's order (None for step 1)."""
        return BY_NUMBER.get(self.number - 1)

    @property
    def following(self) -> Step | None:
        """The step after this one in the vendor's order (None for the last step)."""
        return BY_NUMBER.get(self.number + 1)


STEPS: list[Step] = [
    Step(1, "machine", N_("Control OMS machine"), N_("Check that Omnitron can be reached, and how fast."), "setup.machine"),
    Step(2, "users", N_("Create users"), N_("Admins, brand managers and store staff with their stores."), "setup.users"),
    Step(3, "application", N_("Control OMS application"), N_("Log in to Omnitron with the stored credentials."),
         "setup.application", ("machine", "omnitron_credentials")),
    Step(4, "addresses", N_("Copy addresses"), N_("Copy the country, city, township and district tree from Omnitron."),
         "setup.addresses", ("application",)),
    Step(5, "stock_locations", N_("Copy stores"), N_("Copy stores and warehouses (stock locations) from Omnitron."),
         "setup.stock_locations", ("application",)),
    Step(6, "channels", N_("Copy channels"), N_("Copy the sales channels from Omnitron."), "setup.channels",
         ("application",)),
    Step(7, "omnitron_credentials", N_("OMS credentials"), N_("The Omnitron user (oms.application) the OMS logs in with."),
         "setup.omnitron_credentials", vendor_key="OMNITRON_CLIENT_SETTINGS"),
    Step(8, "order_filtering", N_("Order filtering"), N_("Which orders the OMS fetches from Omnitron."),
         "setup.order_filtering", ("channels",), vendor_key="ORDER_FILTERING"),
    Step(9, "geolocation", N_("Geolocation discovery"), N_("A Google or Yandex Maps key to place addresses on the map."),
         "setup.geolocation", vendor_key="GEOLOCATION_DISCOVERY"),
    Step(10, "stock_integration", N_("Product stock integration"), N_("Where the OMS asks for physical stock."),
         "setup.stock_integration"),
    Step(11, "scenarios", N_("Scenarios"), N_("Per channel: which stock locations may fulfil packages, and how."),
         "setup.scenarios", ("stock_locations", "channels")),
    Step(12, "events", N_("Event list"), N_("The events the brand wants, and their webhook subscriptions."),
         "setup.events", vendor_key="WANTED_EVENTS"),
    Step(13, "package_commands", N_("Package commands"), N_("The package state flow: commands between states."),
         "setup.package_commands"),
    Step(14, "cargo_companies", N_("Cargo companies"), N_("Cargo integrations or demo clients."), "setup.cargo_companies"),
    Step(15, "jobs", N_("Brand-specific jobs"), N_("Scheduled jobs with parameters; run now; last runs."), "setup.jobs"),
]
BY_KEY: dict[str, Step] = {step.key: step for step in STEPS}
BY_NUMBER: dict[int, Step] = {step.number: step for step in STEPS}


def prerequisites(step: Step) -> list[Step]:
    """Every step that must be finished before this one (its needs and theirs), in the order to do them.

    A step comes after everything it needs; among steps free to go, the lower number comes first. So step 4
    (which needs 3, which needs 1 and 7) gives 1, 7, 3.
    """
    needed: set[str] = set()
    pending = list(step.depends_on)
    while pending:
        key = pending.pop()
        if key not in needed:
            needed.add(key)
            pending.extend(BY_KEY[key].depends_on)
    ordered: list[Step] = []
    while needed:
        ready = [BY_KEY[k] for k in needed if not set(BY_KEY[k].depends_on) & needed]
        first = min(ready, key=lambda s: s.number)
        ordered.append(first)
        needed.discard(first.key)
    return ordered
