"""The 15 steps of the OMS basic setup (shared/seeds/oms-basic-setup.txt), in the vendor's order."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Step:
    """A setup step: its number, key, title, what it does, the steps it needs first, and its page."""

    number: int
    key: str
    title: str
    summary: str
    endpoint: str
    depends_on: tuple[str, ...] = field(default_factory=tuple)


STEPS: list[Step] = [
    Step(1, "machine", "Control OMS machine", "Check that Omnitron can be reached, and how fast.", "setup.machine"),
    Step(2, "users", "Create users", "Admins, brand managers and store staff with their stores.", "setup.users"),
    Step(3, "application", "Control OMS application", "Log in to Omnitron with the stored credentials.",
         "setup.application", ("machine", "omnitron_credentials")),
    Step(4, "addresses", "Copy addresses", "Copy the country, city, township and district tree from Omnitron.",
         "setup.addresses", ("application",)),
    Step(5, "stock_locations", "Copy stores", "Copy stores and warehouses (stock locations) from Omnitron.",
         "setup.stock_locations", ("application",)),
    Step(6, "channels", "Copy channels", "Copy the sales channels from Omnitron.", "setup.channels",
         ("application",)),
    Step(7, "omnitron_credentials", "OMS credentials", "OMNITRON_CLIENT_SETTINGS: the oms.application user.",
         "setup.omnitron_credentials"),
    Step(8, "order_filtering", "Order filtering", "ORDER_FILTERING: which orders the OMS fetches.",
         "setup.order_filtering", ("channels",)),
    Step(9, "geolocation", "Geolocation discovery", "GEOLOCATION_DISCOVERY: a Google or Yandex Maps key.",
         "setup.geolocation"),
    Step(10, "stock_integration", "Product stock integration", "Where the OMS asks for physical stock.",
         "setup.stock_integration"),
    Step(11, "scenarios", "Scenarios", "Per channel: which stock locations may fulfil packages, and how.",
         "setup.scenarios", ("stock_locations", "channels")),
    Step(12, "events", "Event list", "The events the brand wants, and their webhook subscriptions.",
         "setup.events"),
    Step(13, "package_commands", "Package commands", "The package state flow: commands between states.",
         "setup.package_commands"),
    Step(14, "cargo_companies", "Cargo companies", "Cargo integrations or demo clients.", "setup.cargo_companies"),
    Step(15, "jobs", "Brand-specific jobs", "Scheduled jobs with parameters; run now; last runs.", "setup.jobs"),
]
BY_KEY: dict[str, Step] = {step.key: step for step in STEPS}
