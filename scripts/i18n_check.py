"""The catalogue checks of `scripts/i18n check`: run as `python scripts/i18n_check.py POT DIR [--complete]`.

Always: every catalogue has every message of messages.pot, and no translation breaks a placeholder (a %(name)s,
%(num)d or {name} of the msgid missing, added or changed in the msgstr: the text would fail or lie at runtime).
With --complete: every catalogue but the source language's (English, whose empty msgstr falls back to the msgid)
also has a msgstr for every message, and none is marked fuzzy (pybabel compiles fuzzy entries as untranslated).
"""
from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path

from babel.messages.catalog import Message
from babel.messages.pofile import read_po

# The language the msgids are written in: its catalogue may leave msgstr empty.
SOURCE_LOCALE = "en"
PLACEHOLDER = re.compile(r"%\(\w+\)[-+ #0]*\d*(?:\.\d+)?[sdifgGeExXorc]|\{\w+\}")


def placeholders(text: str) -> list[str]:
    """The placeholders of a text, sorted: ["%(name)s", "{code}"] (%% is an escaped percent sign, not one)."""
    return sorted(PLACEHOLDER.findall(text.replace("%%", "")))


def _key(message: Message) -> str:
    """The msgid (the singular one of a plural message)."""
    return message.id if isinstance(message.id, str) else message.id[0]


def _forms(value: object) -> list[str]:
    """A msgstr as a list of forms (one for a plain message)."""
    if isinstance(value, (tuple, list)):
        return [str(form or "") for form in value]
    return [str(value or "")]


def placeholder_problems(message: Message) -> list[str]:
    """How the message's translations break its placeholders; a plural form may follow the singular or the plural."""
    sources = [placeholders(text) for text in _forms(message.id)]
    problems = []
    for form in _forms(message.string):
        if form and placeholders(form) not in sources:
            problems.append(f"{_key(message)!r}: the translation {form!r} has {placeholders(form)}, "
                            f"the original {sources[-1]}")
    return problems


def is_translated(message: Message) -> bool:
    """Whether every form of the message has a translation."""
    return all(_forms(message.string))


def catalogue_problems(pot: Iterable[Message], locale: str, catalogue: Iterable[Message], *,
                       complete: bool) -> list[str]:
    """What is wrong with one locale's catalogue against the template."""
    wanted = {_key(message) for message in pot if message.id}
    entries = [message for message in catalogue if message.id]
    problems = []
    missing = sorted(wanted - {_key(message) for message in entries})
    if missing:
        problems.append(f"lacks {len(missing)} message(s), e.g. {missing[0]!r}: run scripts/i18n update.")
    for message in entries:
        problems.extend(placeholder_problems(message))
    if complete and locale != SOURCE_LOCALE:
        empty = [_key(message) for message in entries if not is_translated(message)]
        if empty:
            problems.append(f"has {len(empty)} untranslated message(s), e.g. {empty[0]!r}.")
        fuzzy = [_key(message) for message in entries if message.fuzzy]
        if fuzzy:
            problems.append(f"has {len(fuzzy)} fuzzy message(s), e.g. {fuzzy[0]!r}: check and unmark them.")
    return problems


def check(pot_path: Path, directory: Path, *, complete: bool = False) -> list[str]:
    """Every problem of every catalogue under directory, each prefixed with its file."""
    with open(pot_path, "rb") as handle:
        pot = list(read_po(handle))
    problems = []
    for po_path in sorted(directory.glob("*/LC_MESSAGES/messages.po")):
        locale = po_path.parent.parent.name
        with open(po_path, "rb") as handle:
            catalogue = read_po(handle, locale=locale)
        problems.extend(f"{po_path}: {problem}" for problem in
                        catalogue_problems(pot, locale, catalogue, complete=complete))
    return problems


def main(argv: list[str]) -> int:
    """Print the problems; 1 when there are any."""
    complete = "--complete" in argv
    paths = [arg for arg in argv if not arg.startswith("--")]
    problems = check(Path(paths[0]), Path(paths[1]), complete=complete)
    for problem in problems[:40]:
        print(problem, file=sys.stderr)
    if len(problems) > 40:
        print(f"... and {len(problems) - 40} more.", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
