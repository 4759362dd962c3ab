"""The schedule builder of setup step 15: "every N minutes", "hourly at", "daily at", "weekly on … at", or cron.

Jobs keep storing a 5-field cron expression (ScheduledJob.schedule); the builder writes it from a few plain
fields, and reads a stored expression back into them when it has one of these shapes. Anything else stays
an advanced cron expression, edited as text.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from flask_babel import gettext as _

from portal.errors import ValidationFailed
from portal.i18n import N_

EVERY_MINUTES = "every_minutes"
HOURLY = "hourly"
DAILY = "daily"
WEEKLY = "weekly"
CRON = "cron"

# kind -> label, marked with N_ and translated where shown.
KINDS: dict[str, str] = {
    EVERY_MINUTES: N_("Every few minutes"),
    HOURLY: N_("Every hour"),
    DAILY: N_("Every day"),
    WEEKLY: N_("Every week"),
    CRON: N_("Advanced (cron)"),
}
# cron's day of week (0 = Sunday) -> name, Monday first as the week is read in Turkey and most of Europe.
WEEKDAYS: dict[int, str] = {1: N_("Monday"), 2: N_("Tuesday"), 3: N_("Wednesday"), 4: N_("Thursday"),
                            5: N_("Friday"), 6: N_("Saturday"), 0: N_("Sunday")}

_NUMBER = r"(0|[1-9]\d?)"
_PATTERNS = {
    EVERY_MINUTES: re.compile(rf"^\*/{_NUMBER} \* \* \* \*$"),
    HOURLY: re.compile(rf"^{_NUMBER} \* \* \* \*$"),
    DAILY: re.compile(rf"^{_NUMBER} {_NUMBER} \* \* \*$"),
    WEEKLY: re.compile(rf"^{_NUMBER} {_NUMBER} \* \* ([0-7])$"),
}
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class Schedule:
    """The builder's fields: the kind, and the parts that kind uses (the others keep their defaults)."""

    kind: str = DAILY
    every: int = 15
    minute: int = 0
    hour: int = 3
    weekday: int = 1
    cron: str = ""

    @property
    def time(self) -> str:
        """The hour and minute as a time field shows them ("03:00")."""
        return f"{self.hour:02d}:{self.minute:02d}"

    def expression(self) -> str:
        """The cron expression the builder's fields describe."""
        if self.kind == EVERY_MINUTES:
            return "* * * * *" if self.every == 1 else f"*/{self.every} * * * *"
        if self.kind == HOURLY:
            return f"{self.minute} * * * *"
        if self.kind == DAILY:
            return f"{self.minute} {self.hour} * * *"
        if self.kind == WEEKLY:
            return f"{self.minute} {self.hour} * * {self.weekday}"
        return self.cron

    def describe(self) -> str:
        """The schedule in words, in the request's language."""
        if self.kind == EVERY_MINUTES:
            return _("Every %(count)s minute(s)", count=self.every)
        if self.kind == HOURLY:
            return _("Every hour at %(minute)s minute(s) past", minute=self.minute)
        if self.kind == DAILY:
            return _("Every day at %(time)s", time=self.time)
        if self.kind == WEEKLY:
            return _("Every %(day)s at %(time)s", day=_(WEEKDAYS[self.weekday]), time=self.time)
        return _("Cron: %(expression)s", expression=self.cron)


def read(expression: str) -> Schedule:
    """A stored cron expression as the builder shows it: one of its shapes, else the advanced cron field."""
    text = " ".join((expression or "").split())
    if text == "* * * * *":
        return Schedule(EVERY_MINUTES, every=1, cron=text)
    for kind, pattern in _PATTERNS.items():
        found = pattern.match(text)
        if not found:
            continue
        numbers = [int(n) for n in found.groups()]
        if kind == EVERY_MINUTES and 1 <= numbers[0] <= 59:
            return Schedule(kind, every=numbers[0], cron=text)
        if kind == HOURLY and numbers[0] <= 59:
            return Schedule(kind, minute=numbers[0], cron=text)
        if kind == DAILY and numbers[0] <= 59 and numbers[1] <= 23:
            return Schedule(kind, minute=numbers[0], hour=numbers[1], cron=text)
        if kind == WEEKLY and numbers[0] <= 59 and numbers[1] <= 23:
            return Schedule(kind, minute=numbers[0], hour=numbers[1], weekday=numbers[2] % 7, cron=text)
    return Schedule(CRON, cron=text)


def _whole(raw: object, field: str, label: str, lowest: int, highest: int) -> int:
    """A whole number from a form field within bounds; raises ValidationFailed naming the field."""
    text = str(raw if raw is not None else "").strip()
    if not text.isdigit() or not lowest <= int(text) <= highest:
        raise ValidationFailed(_("%(what)s must be a whole number from %(lowest)s to %(highest)s.", what=label,
                                 lowest=lowest, highest=highest), field=field)
    return int(text)


def _time(raw: object) -> tuple[int, int]:
    """(hour, minute) of an HH:MM time field; raises ValidationFailed."""
    found = _TIME.match(str(raw or "").strip())
    if not found or int(found.group(1)) > 23 or int(found.group(2)) > 59:
        raise ValidationFailed(_("Give the time as hours and minutes, like 03:00."), field="schedule_time")
    return int(found.group(1)), int(found.group(2))


def from_form(form: Mapping) -> Schedule:
    """The builder's fields as posted (schedule_kind, schedule_every, schedule_minute, schedule_time,
    schedule_weekday; the cron text in "schedule"). Without schedule_kind the form is cron text only.

    Raises ValidationFailed naming the field that is wrong.
    """
    kind = str(form.get("schedule_kind") or CRON)
    cron = " ".join(str(form.get("schedule") or "").split())
    if kind == EVERY_MINUTES:
        every = _whole(form.get("schedule_every"), "schedule_every", _("The number of minutes"), 1, 59)
        return Schedule(kind, every=every)
    if kind == HOURLY:
        return Schedule(kind, minute=_whole(form.get("schedule_minute"), "schedule_minute",
                                            _("The minute past the hour"), 0, 59))
    if kind in (DAILY, WEEKLY):
        hour, minute = _time(form.get("schedule_time"))
        if kind == DAILY:
            return Schedule(kind, hour=hour, minute=minute)
        weekday = _whole(form.get("schedule_weekday"), "schedule_weekday", _("The day of the week"), 0, 6)
        return Schedule(kind, hour=hour, minute=minute, weekday=weekday)
    if kind != CRON:
        raise ValidationFailed(_("Choose how often the job runs."), field="schedule_kind")
    return Schedule(CRON, cron=cron)
