"""Retry countdown configs (fixed, linear, exponential, random) and the delay before each retry.

Format: {"type": "fixed", "interval": s} | {"type": "linear", "interval": s, "increment": s} |
{"type": "exponential", "base": s, "factor": f, "max_interval": s} | {"type": "random", "min": s, "max": s},
each plus "max_attempts" (1..25, default 8). Seconds are numbers; after max_attempts a delivery is dead.
"""
from __future__ import annotations

import json
import random
from typing import Any

from flask_babel import gettext as _

from portal.errors import ValidationFailed
from portal.i18n import N_

DAY = 24 * 3600
MAX_ATTEMPTS_LIMIT = 25
DEFAULT_MAX_ATTEMPTS = 8
# A retry configuration as stored (a JSON object): its values are numbers, and "type" a string.
DEFAULT_CONFIG: dict[str, Any] = {"type": "exponential", "base": 30, "factor": 2, "max_interval": 6 * 3600,
                                  "max_attempts": DEFAULT_MAX_ATTEMPTS}

# type -> {parameter: (label, minimum, maximum, default)}; labels are marked with N_ and translated in messages.
PARAMETERS: dict[str, dict[str, tuple[str, float, float, float]]] = {
    "fixed": {"interval": (N_("interval (seconds)"), 1, DAY, 60)},
    "linear": {"interval": (N_("interval (seconds)"), 1, DAY, 60),
               "increment": (N_("increment (seconds)"), 0, DAY, 60)},
    "exponential": {"base": (N_("base (seconds)"), 1, DAY, 30), "factor": (N_("factor"), 1, 10, 2),
                    "max_interval": (N_("max_interval (seconds)"), 1, 7 * DAY, 6 * 3600)},
    "random": {"min": (N_("min (seconds)"), 1, DAY, 30), "max": (N_("max (seconds)"), 1, DAY, 300)},
}
TYPES = tuple(PARAMETERS)


def _number(raw: object, name: str, label: str, low: float, high: float) -> float | int:
    """A number within [low, high] (numeric text accepted); raises ValidationFailed naming the field."""
    label = _(label)  # marked with N_ in PARAMETERS
    if isinstance(raw, bool):
        raise ValidationFailed(_("%(label)s must be a number.", label=label), field=name)
    if isinstance(raw, str):
        try:
            raw = float(raw.strip())
        except ValueError:
            raise ValidationFailed(_("%(label)s must be a number.", label=label), field=name) from None
    if not isinstance(raw, (int, float)) or raw != raw:  # raw != raw: NaN
        raise ValidationFailed(_("%(label)s must be a number.", label=label), field=name)
    if not low <= raw <= high:
        raise ValidationFailed(_("%(label)s must be from %(low)g to %(high)g.", label=label, low=low, high=high),
                               field=name)
    return int(raw) if float(raw).is_integer() else float(raw)


def validate_retry_config(raw: object) -> dict:
    """Check a retry_countdown_config and return it normalised (defaults filled in). Raises ValidationFailed.

    None or {} gives the default (exponential, 30 s doubling up to 6 h, 8 attempts); JSON text is accepted.
    """
    if raw in (None, "", {}):
        return dict(DEFAULT_CONFIG)
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ValidationFailed(_("retry_countdown_config must be a JSON object."),
                                   field="retry_countdown_config") from None
    if not isinstance(raw, dict):
        raise ValidationFailed(_("retry_countdown_config must be an object."), field="retry_countdown_config")
    kind = raw.get("type")
    if kind not in PARAMETERS:
        raise ValidationFailed(_("The retry type must be one of %(types)s.", types=", ".join(TYPES)), field="type")
    params = PARAMETERS[kind]
    unknown = sorted(set(raw) - set(params) - {"type", "max_attempts"})
    if unknown:
        raise ValidationFailed(_("%(unknown)r is not a parameter of %(kind)s retries "
                                 "(they take %(params)s and max_attempts).",
                                 unknown=unknown[0], kind=kind, params=", ".join(params)), field=unknown[0])
    config: dict = {"type": kind}
    for name, (label, low, high, default) in params.items():
        config[name] = _number(raw.get(name, default), name, label, low, high)
    config["max_attempts"] = int(_number(raw.get("max_attempts", DEFAULT_MAX_ATTEMPTS), "max_attempts",
                                         "max_attempts", 1, MAX_ATTEMPTS_LIMIT))
    if raw.get("max_attempts") is not None and not float(raw["max_attempts"]).is_integer():
        raise ValidationFailed(_("max_attempts must be a whole number."), field="max_attempts")
    if kind == "exponential" and config["max_interval"] < config["base"]:
        raise ValidationFailed(_("max_interval cannot be shorter than base."), field="max_interval")
    if kind == "random" and config["max"] < config["min"]:
        raise ValidationFailed(_("max cannot be below min."), field="max")
    return config


def next_delay(config: dict, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 = the first delivery) before the next one."""
    config = config or DEFAULT_CONFIG
    step = max(1, attempt) - 1
    kind = config.get("type")
    if kind == "fixed":
        return float(config["interval"])
    if kind == "linear":
        return float(config["interval"] + config["increment"] * step)
    if kind == "exponential":
        # Cap the exponent's growth before multiplying so a large attempt number cannot overflow.
        delay = config["base"] * config["factor"] ** min(step, 64)
        return float(min(delay, config["max_interval"]))
    if kind == "random":
        return (rng or random).uniform(config["min"], config["max"])
    return next_delay(DEFAULT_CONFIG, attempt, rng)


def max_attempts(config: dict) -> int:
    """How many attempts a delivery gets before it is dead-lettered."""
    return int((config or {}).get("max_attempts") or DEFAULT_MAX_ATTEMPTS)


def describe(config: dict) -> str:
    """The schedule in words, for the UI ("every 60 s, 8 attempts")."""
    config = config or DEFAULT_CONFIG
    kind, tries = config.get("type"), max_attempts(config)
    if kind == "fixed":
        text = _("every %(interval)g s", interval=config["interval"])
    elif kind == "linear":
        text = _("after %(interval)g s, then %(increment)g s longer each time", interval=config["interval"],
                 increment=config["increment"])
    elif kind == "exponential":
        text = _("after %(base)g s, multiplied by %(factor)g each time, at most %(longest)g s", base=config["base"],
                 factor=config["factor"], longest=config["max_interval"])
    elif kind == "random":
        text = _("after a random %(min)g-%(max)g s", min=config["min"], max=config["max"])
    else:
        text = _("default schedule")
    return _("%(schedule)s; %(count)s attempt(s) in all", schedule=text, count=tries)
