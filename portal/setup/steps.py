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

    @property
    def title(self) -> str:
        """The step's title in the request's language."""
        return gettext(self.english_title)

    @property
    def summary(self) -> str:
        """What the step does, in the request's language."""
        return gettext(self.english_summary)


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
    Step(7, "omnitron_credentials", N_("OMS credentials"), N_("OMNITRON_CLIENT_SETTINGS: the oms.application user."),
         "setup.omnitron_credentials"),
    Step(8, "order_filtering", N_("Order filtering"), N_("ORDER_FILTERING: which orders the OMS fetches."),
         "setup.order_filtering", ("channels",)),
    Step(9, "geolocation", N_("Geolocation discovery"), N_("GEOLOCATION_DISCOVERY: a Google or Yandex Maps key."),
         "setup.geolocation"),
    Step(10, "stock_integration", N_("Product stock integration"), N_("Where the OMS asks for physical stock."),
         "setup.stock_integration"),
    Step(11, "scenarios", N_("Scenarios"), N_("Per channel: which stock locations may fulfil packages, and how."),
         "setup.scenarios", ("stock_locations", "channels")),
    Step(12, "events", N_("Event list"), N_("The events the brand wants, and their webhook subscriptions."),
         "setup.events"),
    Step(13, "package_commands", N_("Package commands"), N_("The package state flow: commands between states."),
         "setup.package_commands"),
    Step(14, "cargo_companies", N_("Cargo companies"), N_("Cargo integrations or demo clients."), "setup.cargo_companies"),
    Step(15, "jobs", N_("Brand-specific jobs"), N_("Scheduled jobs with parameters; run now; last runs."), "setup.jobs"),
]
BY_KEY: dict[str, Step] = {step.key: step for step in STEPS}
