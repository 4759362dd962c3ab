"""The subscription form: event type, target URL, retry countdown as structured fields, headers as rows.

The form only turns what the browser posts into the service's fields; every rule (SSRF, retry limits,
header names) is checked by portal.webhooks.service, so the form and the API give the same messages.
"""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField

from portal.errors import ValidationFailed
from portal.i18n import N_
from portal.webhooks import retry

RETRY_TYPES = {
    "fixed": N_("Fixed: the same wait every time"),
    "linear": N_("Linear: the wait grows by a fixed step"),
    "exponential": N_("Exponential: the wait multiplies each time"),
    "random": N_("Random: a wait picked between two bounds"),
}
# Each countdown type's parameters: (name, label, help, default); defaults are the service's own.
# Labels and help are marked with N_ and translated where they are shown.
_DEFAULTS = {kind: {name: f"{spec[3]:g}" for name, spec in params.items()} for kind, params in retry.PARAMETERS.items()}
RETRY_PARAMS: dict[str, list[tuple[str, str, str, str]]] = {
    "fixed": [("interval", N_("Wait between attempts (seconds)"), "", _DEFAULTS["fixed"]["interval"])],
    "linear": [("interval", N_("First wait (seconds)"), "", _DEFAULTS["linear"]["interval"]),
               ("increment", N_("Added to each next wait (seconds)"), "", _DEFAULTS["linear"]["increment"])],
    "exponential": [("base", N_("First wait (seconds)"), "", _DEFAULTS["exponential"]["base"]),
                    ("factor", N_("Multiplied by"), N_("2 doubles the wait each time (1 to 10)."),
                     _DEFAULTS["exponential"]["factor"]),
                    ("max_interval", N_("Longest wait (seconds)"), "", _DEFAULTS["exponential"]["max_interval"])],
    "random": [("min", N_("Shortest wait (seconds)"), "", _DEFAULTS["random"]["min"]),
               ("max", N_("Longest wait (seconds)"), "", _DEFAULTS["random"]["max"])],
}
PARAM_NAMES = sorted({name for params in RETRY_PARAMS.values() for name, *_ in params})
DEFAULT_RETRY_TYPE: str = retry.DEFAULT_CONFIG["type"]
DEFAULT_MAX_ATTEMPTS = str(retry.DEFAULT_MAX_ATTEMPTS)
MAX_HEADER_ROWS = 20


def _number(raw: str, label: str, field: str) -> int | float:
    """A posted number (whole or decimal); raises ValidationFailed in plain words otherwise.

    `label` is the field's English label (marked with N_); it is translated here."""
    label = _(label)
    text = (raw or "").strip().replace(",", ".")
    if not text:
        raise ValidationFailed(_("Enter %(label)s.", label=label.lower()), field=field)
    try:
        value = float(text)
    except ValueError:
        raise ValidationFailed(_("%(label)s must be a number.", label=label), field=field) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValidationFailed(_("%(label)s must be a number.", label=label), field=field)
    return int(value) if value.is_integer() else value


class SubscriptionForm(FlaskForm):
    """Create or edit a webhook subscription.

    The two selects are plain text fields here: any posted value reaches the service, which names an
    unknown event type in words beside the field (the template renders the options).
    """

    event_type = StringField(_l("Event"), default="*")
    target_url = StringField(_l("Target URL"))
    retry_type = StringField(_l("Retry countdown"), default=DEFAULT_RETRY_TYPE)
    max_attempts = StringField(_l("Attempts before giving up"), default=DEFAULT_MAX_ATTEMPTS)
    is_active = BooleanField(_l("Active: deliver events to this URL"), default=True)

    def retry_values(self, formdata) -> dict[str, str]:
        """The posted parameter fields (as typed), by parameter name."""
        return {name: (formdata.get(f"retry_{name}") or "").strip() for name in PARAM_NAMES}

    def header_rows(self, formdata) -> list[tuple[str, str]]:
        """The posted header rows (name, value), blank rows left out."""
        names, values = formdata.getlist("header_name"), formdata.getlist("header_value")
        rows = []
        for i, name in enumerate(names[:MAX_HEADER_ROWS]):
            value = values[i] if i < len(values) else ""
            if name.strip() or value.strip():
                rows.append((name.strip(), value.strip()))
        return rows

    def retry_countdown_config(self, formdata) -> dict:
        """The retry config the chosen type and its fields describe; raises ValidationFailed for non-numbers."""
        kind = self.retry_type.data
        if kind not in RETRY_PARAMS:
            raise ValidationFailed(_("Choose how the waits between attempts grow."), field="retry_type")
        values = self.retry_values(formdata)
        config: dict = {"type": kind}
        for name, label, _help, _default in RETRY_PARAMS[kind]:
            config[name] = _number(values[name], label, f"retry_{name}")
        attempts = _number(self.max_attempts.data or "", N_("Attempts before giving up"), "max_attempts")
        if not isinstance(attempts, int):
            raise ValidationFailed(_("Attempts before giving up must be a whole number."), field="max_attempts")
        config["max_attempts"] = attempts
        return config

    def additional_headers(self, formdata) -> dict[str, str]:
        """The header rows as a dict; a row with a value but no name, or a name twice, is an error."""
        headers: dict[str, str] = {}
        for name, value in self.header_rows(formdata):
            if not name:
                raise ValidationFailed(_("The header with the value %(value)r needs a name.", value=value),
                                       field="headers")
            if name.lower() in (n.lower() for n in headers):
                raise ValidationFailed(_("The header %(name)s is listed twice.", name=name), field="headers")
            headers[name] = value
        return headers

    def subscription_fields(self, formdata) -> dict:
        """Everything the service needs to create or update the subscription."""
        return {
            "event_type": (self.event_type.data or "").strip(),
            "target_url": (self.target_url.data or "").strip(),
            "retry_countdown_config": self.retry_countdown_config(formdata),
            "additional_headers": self.additional_headers(formdata),
            "is_active": bool(self.is_active.data),
        }


def _seconds(value) -> str:
    """A number of seconds as people read it: "90 s", "2 min", "1.5 h"."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return str(value)
    if seconds >= 3600 and (seconds / 3600).is_integer():
        return _("%(num)s h", num=int(seconds // 3600))
    if seconds >= 60 and (seconds / 60).is_integer():
        return _("%(num)s min", num=int(seconds // 60))
    return _("%(num)g s", num=seconds)


def describe_retry(config: dict | None) -> str:
    """A retry countdown config in words: "Exponential: 10 s, times 2 each time, at most 1 h; 8 attempts"."""
    config = config or {}
    kind = config.get("type")
    if kind == "fixed":
        words = _("Fixed: %(wait)s between attempts", wait=_seconds(config.get("interval")))
    elif kind == "linear":
        words = _("Linear: %(first)s, then %(step)s more each time", first=_seconds(config.get("interval")),
                  step=_seconds(config.get("increment")))
    elif kind == "exponential":
        words = _("Exponential: %(first)s, times %(factor)s each time, at most %(longest)s",
                  first=_seconds(config.get("base")), factor=config.get("factor"),
                  longest=_seconds(config.get("max_interval")))
    elif kind == "random":
        words = _("Random: between %(shortest)s and %(longest)s", shortest=_seconds(config.get("min")),
                  longest=_seconds(config.get("max")))
    else:
        words = _("Default countdown")
    attempts = config.get("max_attempts")
    return _("%(countdown)s; %(num)s attempts", countdown=words, num=attempts) if attempts else words
