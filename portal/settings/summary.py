"""A saved setting told in words: its plain name, and its value as label/value pairs instead of JSON.

The wizard's settings steps and the settings page show what was saved as a definition list; the vendor's
key (ORDER_FILTERING...) stays beside the plain name as a secondary label. Secrets are masked first.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from flask_babel import gettext as _

from portal.i18n import N_
from portal.settings import service as settings

# key -> plain name, marked with N_ and translated by setting_name().
SETTING_NAMES: dict[str, str] = {
    settings.IS_OTP_ENABLED: N_("Pickup codes"),
    settings.OMNITRON_CLIENT_SETTINGS: N_("Omnitron login"),
    settings.ORDER_FILTERING: N_("Order filtering"),
    settings.GEOLOCATION_DISCOVERY: N_("Maps key for geolocation"),
    settings.WANTED_EVENTS: N_("Wanted events"),
    settings.PICKUP_CODE_DELIVERY: N_("Who sends the pickup code"),
}
# field name inside a setting's value -> label, marked with N_.
FIELD_LABELS: dict[str, str] = {
    "auth": N_("Login"), "username": N_("Username"), "password": N_("Password"),
    "statuses": N_("Order statuses"), "channels": N_("Channels"), "start_date": N_("Orders created on or after"),
    "exclude_test_orders": N_("Leave out test orders"), "page_size": N_("Orders per request"),
    "provider": N_("Provider"), "api_key": N_("API key"),
}
# field -> what an empty list means there.
EMPTY_LISTS: dict[str, str] = {"channels": N_("Every channel"), "statuses": N_("None")}

Formatter = Callable[[object], str]


def setting_name(key: str) -> str:
    """A setting's plain name in the request's language; an unknown key as it is."""
    name = SETTING_NAMES.get(key)
    return _(name) if name else key


def _label(name: str) -> str:
    """A field's label, or the field name itself."""
    label = FIELD_LABELS.get(name)
    return _(label) if label else name.replace("_", " ").capitalize()


def _text(name: str, value: object, formatters: Mapping[str, Formatter]) -> str:
    """One value in words: Yes/No, "Not set", a list joined with commas (its items named by formatters)."""
    if value is None or value == "":
        return _("Not set")
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, list):
        if not value:
            return _(EMPTY_LISTS.get(name, N_("None")))
        item = formatters.get(name, str)
        return ", ".join(item(v) for v in value)
    if name in formatters:
        return formatters[name](value)
    return str(value)


def summarize(key: str, value: object, formatters: Mapping[str, Formatter] | None = None) -> list[tuple[str, str]]:
    """(label, value) pairs describing a stored setting, secrets masked; nested objects are flattened.

    `formatters` name the items of a field (a channel id -> its name, say). Order statuses are named here.
    """
    formatters = {"statuses": lambda code: _(settings.ORDER_STATUSES.get(str(code), str(code))),
                  "provider": lambda code: settings.GEOLOCATION_PROVIDERS.get(str(code), str(code)),
                  **(formatters or {})}
    shown = settings.public_value(key, value)
    if not isinstance(shown, dict):
        return [(setting_name(key), _text(key, shown, formatters))]
    pairs: list[tuple[str, str]] = []
    for name, item in shown.items():
        if isinstance(item, dict):
            pairs.extend((_label(inner), _text(inner, v, formatters)) for inner, v in item.items())
        else:
            pairs.append((_label(name), _text(name, item, formatters)))
    return pairs
